package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/internal/cloudlogs"
	"github.com/mediascale/mediascale/scripts/testkit/loopback"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// metricSum adds up a metric's data points of the last hour in the
// Mediascale namespace, as the functions' embedded metric lines left them.
func (c *cloud) metricSum(name string, dims map[string]string) float64 {
	c.t.Helper()
	var ds []cwtypes.Dimension
	for k, v := range dims {
		ds = append(ds, cwtypes.Dimension{Name: aws.String(k), Value: aws.String(v)})
	}
	now := time.Now()
	out, err := cloudwatch.NewFromConfig(c.cfg).GetMetricStatistics(context.Background(), &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String(telemetry.Namespace), MetricName: aws.String(name), Dimensions: ds,
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(3600),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticSum},
	})
	if err != nil {
		c.t.Fatalf("reading metric %s: %v", name, err)
	}
	sum := 0.0
	for _, d := range out.Datapoints {
		sum += aws.ToFloat64(d.Sum)
	}
	return sum
}

// logged reports whether a function's log group holds a line containing
// text.
func (c *cloud) logged(function, text string) bool {
	c.t.Helper()
	out, err := cloudwatchlogs.NewFromConfig(c.cfg).FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(cloudlogs.LogGroup("mediascale-dev-" + function)),
	})
	if err != nil {
		c.t.Fatalf("reading the logs of %s: %v", function, err)
	}
	for _, e := range out.Events {
		if strings.Contains(aws.ToString(e.Message), text) {
			return true
		}
	}
	return false
}

// decision is one line of the trigger's log: a controller decision, or an
// invocation's summary (a pressure round's has its alarm "pressure", its
// round and whether the loop goes on).
type decision struct {
	Msg      string    `json:"msg"`
	At       time.Time `json:"time"`
	Pool     string    `json:"pool"`
	Alarm    string    `json:"alarm"`
	Pressure string    `json:"pressure"`
	Reason   string    `json:"reason"`
	Round    int       `json:"round"`
	Continue bool      `json:"continue"`
	// DurationMs is an invocation's own time.
	DurationMs int64 `json:"durationMs"`
}

// decisions reads every line the trigger logged for the pool, oldest
// first: its controller decisions and its invocations' summaries.
func (c *cloud) decisions(poolName string) []decision {
	c.t.Helper()
	var out []decision
	for _, msg := range c.logLines("trigger") {
		var d decision
		if json.Unmarshal([]byte(msg), &d) == nil && d.Pool == poolName {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b decision) int { return a.At.Compare(b.At) })
	return out
}

// logLines reads every line of a function's log group.
func (c *cloud) logLines(function string) []string {
	c.t.Helper()
	var out []string
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(cloudwatchlogs.NewFromConfig(c.cfg), &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(cloudlogs.LogGroup("mediascale-dev-" + function)),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			c.t.Fatalf("reading the logs of %s: %v", function, err)
		}
		for _, e := range page.Events {
			out = append(out, aws.ToString(e.Message))
		}
	}
	return out
}

// cloud is a running local cloud with the clients the assertions need.
type cloud struct {
	t         testing.TB
	env       map[string]string
	state     string
	cfg       aws.Config
	table     string
	pools     pool.File
	store     *fleet.Store
	endpoints []byte
	seq       int
	// stamps is the time the cloud's sample alarm events start from.
	stamps time.Time
	// metricMinute orders the scenarios' published metrics in time.
	metricMinute int
}

func newCloud(t testing.TB, extra ...string) *cloud {
	env, state := localCloud(t, extra...)
	ctx := context.Background()
	c := &cloud{t: t, env: env, state: state, cfg: motoserver.ConfigFor(ctx, env["AWS_ENDPOINT_URL"])}
	conf, err := lambda.NewFromConfig(c.cfg).GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("mediascale-dev-plan")})
	if err != nil {
		t.Fatal(err)
	}
	c.table = conf.Environment.Variables["MEDIASCALE_TABLE"]
	param, err := ssm.NewFromConfig(c.cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/mediascale/dev/pools")})
	if err != nil {
		t.Fatal(err)
	}
	if c.pools, err = pool.ParseJSON([]byte(aws.ToString(param.Parameter.Value))); err != nil {
		t.Fatal(err)
	}
	c.store = fleet.NewStore(dynamodb.NewFromConfig(c.cfg), c.table, time.Now)
	if c.endpoints, err = os.ReadFile(filepath.Join(state, "endpoints.json")); err != nil {
		t.Fatal(err)
	}
	return c
}

// alarm returns the sample scale-out alarm with a fresh state-change time,
// so each scenario is a new state change.
func (c *cloud) alarm() []byte {
	return c.stateChange("alarm-connections-high.json")
}

// stateChange returns a sample alarm event as a new state change: its
// time is unique in the test (one second apart per call) and recent, as
// the trigger accepts only what EventBridge could still deliver.
func (c *cloud) stateChange(file string) []byte {
	c.seq++
	raw, err := os.ReadFile(filepath.Join(repoRoot, "testevents/trigger", file))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.stamps.IsZero() {
		c.stamps = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	}
	out, err := restamp(raw, c.stamps.Add(time.Duration(c.seq)*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// fresh readies the pool for a scenario: no faults, the real media node as
// every endpoint, and no cooldown left from the scenario before.
func (c *cloud) fresh() {
	c.t.Helper()
	c.faults("[]")
	if err := os.WriteFile(filepath.Join(c.state, "endpoints.json"), c.endpoints, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.clearCooldown("out")
}

func (c *cloud) faults(doc string) {
	c.t.Helper()
	resp, err := http.Post(c.env["MEDIASCALE_ROUTER_URL"]+"/_localcloud/faults", "application/json", strings.NewReader(doc))
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
}

func (c *cloud) replay(event []byte) ReplaySummary {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rs, err := RunReplay(ctx, c.cfg, "dev", c.env["MEDIASCALE_ROUTER_URL"], event, &log)
	if err != nil {
		c.t.Fatalf("replay: %v\n%s", err, log.String())
	}
	c.t.Logf("replay:\n%s", log.String())
	return rs
}

// nodesOf returns the nodes an execution planned.
func (c *cloud) nodesOf(execution string) []fleet.Node {
	return c.nodesWhere(func(n fleet.Node) bool { return strings.HasSuffix(execution, ":"+n.Execution) })
}

// servingOf and warmOf split an execution's nodes: those it took into
// service, and those it launched for the warm pool (the dev live pool
// keeps one node there).
func (c *cloud) servingOf(execution string) []fleet.Node {
	return slices.DeleteFunc(c.nodesOf(execution), func(n fleet.Node) bool { return n.Goal == events.GoalWarm })
}

func (c *cloud) warmOf(execution string) []fleet.Node {
	return slices.DeleteFunc(c.nodesOf(execution), func(n fleet.Node) bool { return n.Goal != events.GoalWarm })
}

// nodesWhere returns the pool's nodes that keep says to.
func (c *cloud) nodesWhere(keep func(fleet.Node) bool) []fleet.Node {
	c.t.Helper()
	all, err := c.store.ListNodes(context.Background(), "live-rtmp-use1")
	if err != nil {
		c.t.Fatal(err)
	}
	var out []fleet.Node
	for _, n := range all {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *cloud) instance(id string) (state string, tags map[string]string) {
	c.t.Helper()
	out, err := ec2.NewFromConfig(c.cfg).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		c.t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	tags = map[string]string{}
	for _, tg := range inst.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return string(inst.State.Name), tags
}

// recordWeight reads a node's weighted record; -1 when it has none.
func (c *cloud) recordWeight(node string) int {
	c.t.Helper()
	p, _ := c.pools.Find("live-rtmp-use1")
	out, err := route53.NewFromConfig(c.cfg).ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(p.Traffic.Route53.HostedZoneID)})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, r := range out.ResourceRecordSets {
		if aws.ToString(r.SetIdentifier) == node {
			return int(aws.ToInt64(r.Weight))
		}
	}
	return -1
}

func (c *cloud) lockHeld() bool {
	c.t.Helper()
	_, held, err := c.store.GetLock(context.Background(), "live-rtmp-use1")
	if err != nil {
		c.t.Fatal(err)
	}
	return held
}

func TestScaleOutOnTheLocalCloud(t *testing.T) {
	t.Parallel()
	c := newCloud(t)
	var first []fleet.Node

	t.Run("an alarm adds nodes that end ACTIVE at full weight, tagged, with the lock released", func(t *testing.T) {
		c.fresh()
		event := c.alarm()
		rs := c.replay(event)
		if rs.Status != "SUCCEEDED" {
			t.Fatalf("status %s", rs.Status)
		}
		first = c.servingOf(rs.Execution)
		if len(first) != 2 {
			t.Fatalf("%d nodes, want the pool's step of 2", len(first))
		}
		// The same execution filled the pool's empty warm pool: one node
		// deployed, probed and parked, with no record and a stopped
		// instance.
		parked := c.warmOf(rs.Execution)
		if len(parked) != 1 || parked[0].State != fleet.Warm || c.recordWeight(parked[0].ID) != -1 {
			t.Fatalf("warm pool after the first scale-out: %+v", parked)
		}
		if st, _ := c.instance(parked[0].InstanceID); st != "stopped" {
			t.Fatalf("the parked node's instance is %s, want stopped", st)
		}
		for _, n := range first {
			st, tags := c.instance(n.InstanceID)
			if n.State != fleet.Active || n.Weight != 100 || st != "running" {
				t.Fatalf("node %s: %s weight %d instance %s", n.ID, n.State, n.Weight, st)
			}
			if tags[compute.TagPool] != "live-rtmp-use1" || tags[compute.TagEnv] != "dev" || tags[compute.TagNode] != n.ID {
				t.Fatalf("instance tags %v", tags)
			}
			if w := c.recordWeight(n.ID); w != 100 {
				t.Fatalf("record weight of %s = %d", n.ID, w)
			}
		}
		if c.lockHeld() {
			t.Fatal("the pool lock is still held")
		}
		outcome := map[string]string{"Pool": "live-rtmp-use1", "Direction": "out", "Status": "SUCCEEDED"}
		if events, added := c.metricSum("ScaleEvents", outcome), c.metricSum("NodesAdded", outcome); events < 1 || added < 2 {
			t.Fatalf("metrics ScaleEvents %v NodesAdded %v, want at least 1 and 2", events, added)
		}
		if c.metricSum("StepDuration", map[string]string{"Pool": "live-rtmp-use1", "Step": "probe"}) <= 0 {
			t.Fatal("no probe StepDuration for the pool")
		}
		if !c.logged("release", `"status":"SUCCEEDED"`) {
			t.Fatal("the release summary is not in the release function's log group")
		}
		if per := (rs.Transitions - 5) / len(c.nodesOf(rs.Execution)); per > 30 {
			t.Fatalf("%d state transitions per node, budget 30", per)
		}

		t.Run("the same alarm event again starts no second execution", func(t *testing.T) {
			again := c.replay(event)
			if again.Status != "NOT_STARTED" || !strings.Contains(string(again.Decision), "duplicate") {
				t.Fatalf("second delivery: %+v", again)
			}
			list, err := sfn.NewFromConfig(c.cfg).ListExecutions(context.Background(), &sfn.ListExecutionsInput{
				StateMachineArn: aws.String("arn:aws:states:us-east-1:123456789012:stateMachine:mediascale-dev-scale-out"),
			})
			if err != nil || len(list.Executions) != 1 {
				t.Fatalf("executions: %d, %v", len(list.Executions), err)
			}
		})
	})

	t.Run("a node that fails its probe is rolled back and nothing else is touched", func(t *testing.T) {
		c.fresh()
		closed, _ := loopback.FreePort()
		doc, _ := json.Marshal(map[string]any{"default": map[string]any{"host": "127.0.0.1", "healthPort": closed, "mediaPort": closed}})
		if err := os.WriteFile(filepath.Join(c.state, "endpoints.json"), doc, 0o644); err != nil {
			t.Fatal(err)
		}
		rs := c.replay(c.alarm())
		if rs.Status != "FAILED" {
			t.Fatalf("status %s, want FAILED", rs.Status)
		}
		c.assertRolledBack(t, rs, "ProbeFailed", "connection refused")
		if n := c.metricSum("Rollbacks", map[string]string{"Pool": "live-rtmp-use1", "Direction": "out", "Status": "FAILED"}); n < 2 {
			t.Fatalf("Rollbacks metric %v, want the 2 rolled-back nodes", n)
		}
		for _, n := range first {
			now, _ := c.store.GetNode(context.Background(), n.Pool, n.ID)
			if st, _ := c.instance(n.InstanceID); now.State != fleet.Active || now.Version != n.Version || st != "running" || c.recordWeight(n.ID) != 100 {
				t.Fatalf("node %s of the first scale-out was touched: %s v%d (was v%d), instance %s", n.ID, now.State, now.Version, n.Version, st)
			}
		}
	})

	t.Run("a failed deployment is rolled back with the command's output", func(t *testing.T) {
		c.fresh()
		c.faults(`[{"target":"AmazonSSM.GetCommandInvocation","status":200,"contentType":"application/x-amz-json-1.1",
			"body":"{\"CommandId\":\"c\",\"InstanceId\":\"i\",\"Status\":\"Failed\",\"StatusDetails\":\"Failed\",\"ResponseCode\":1,\"StandardErrorContent\":\"nginx: [emerg] unknown directive rtmp\"}"}]`)
		rs := c.replay(c.alarm())
		if rs.Status != "FAILED" {
			t.Fatalf("status %s, want FAILED", rs.Status)
		}
		c.assertRolledBack(t, rs, "DeployFailed", "unknown directive rtmp")
	})

	t.Run("a load-balancer pool shifts its nodes through the canary group into the stable group", func(t *testing.T) {
		c.fresh()
		rs := c.replay(c.stateChange("alarm-voice-cpu-high.json"))
		if rs.Status != "SUCCEEDED" {
			t.Fatalf("status %s", rs.Status)
		}
		voice, _ := c.pools.Find("voice-sfu-use1")
		all, _ := c.store.ListNodes(context.Background(), "voice-sfu-use1")
		if len(all) != 3 {
			t.Fatalf("%d voice nodes, want the step of 3", len(all))
		}
		zones := map[string]bool{}
		for _, n := range all {
			if n.State != fleet.Active || n.Weight != 100 {
				t.Fatalf("node %s: %s weight %d", n.ID, n.State, n.Weight)
			}
			zones[n.AZ] = true
		}
		if len(zones) != 3 {
			t.Fatalf("nodes in zones %v, want one in each of three", zones)
		}
		lb := voice.Traffic.LoadBalancer
		e := elasticloadbalancingv2.NewFromConfig(c.cfg)
		count := func(tg string) int {
			out, err := e.DescribeTargetHealth(context.Background(), &elasticloadbalancingv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
			if err != nil {
				t.Fatal(err)
			}
			return len(out.TargetHealthDescriptions)
		}
		// Locally every node is the one media node on 127.0.0.1, so the
		// stable group holds that one address.
		if count(lb.TargetGroupArn) != 1 || count(lb.CanaryTargetGroupArn) != 0 {
			t.Fatalf("stable group %d targets, canary %d", count(lb.TargetGroupArn), count(lb.CanaryTargetGroupArn))
		}
		ls, err := e.DescribeListeners(context.Background(), &elasticloadbalancingv2.DescribeListenersInput{ListenerArns: []string{lb.ListenerArn}})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range ls.Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups {
			if aws.ToString(g.TargetGroupArn) == lb.CanaryTargetGroupArn && aws.ToInt32(g.Weight) != 0 {
				t.Fatalf("the canary group keeps weight %d after the shift", aws.ToInt32(g.Weight))
			}
		}
	})

	t.Run("no capacity for the first instance type launches the second", func(t *testing.T) {
		c.fresh()
		c.faults(`[{"action":"RunInstances","params":{"InstanceType":"c7gn.xlarge"},"status":500,"contentType":"text/xml",
			"body":"<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not have sufficient c7gn.xlarge capacity.</Message></Error></Errors><RequestID>r</RequestID></Response>"}]`)
		rs := c.replay(c.alarm())
		if rs.Status != "SUCCEEDED" {
			t.Fatalf("status %s", rs.Status)
		}
		for _, n := range c.servingOf(rs.Execution) {
			if n.State != fleet.Active || n.InstanceType != "c7g.xlarge" {
				t.Fatalf("node %s: %s as %s, want ACTIVE as c7g.xlarge", n.ID, n.State, n.InstanceType)
			}
		}
	})

	t.Run("100 state changes of the pool's alarms within a second start one planning round", func(t *testing.T) {
		c.fresh()
		// Each change is distinct (its own alarm and millisecond), so no
		// dedupe mark stops it: only the pool lock, the cooldown and the
		// re-read under the lock can.
		base := c.alarm()
		at := c.stamps.Add(time.Duration(c.seq) * time.Second)
		before := c.executions("scale-out")
		target, err := ruleTarget(context.Background(), eventbridge.NewFromConfig(c.cfg), "mediascale-dev-alarms")
		if err != nil {
			t.Fatal(err)
		}
		const changes, senders = 100, 10
		answers := make([]string, changes)
		work := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < senders; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					ev := base
					if i%2 == 1 {
						ev = bytes.ReplaceAll(base, []byte("scale-out-connections"), []byte("scale-out-cpu"))
					}
					ev, err := restamp(ev, at.Add(time.Duration(i)*time.Millisecond))
					if err != nil {
						answers[i] = err.Error()
						continue
					}
					out, err := lambda.NewFromConfig(c.cfg).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(target), Payload: ev})
					if err != nil {
						answers[i] = err.Error()
						continue
					}
					answers[i] = string(out.Payload)
				}
			}()
		}
		for i := 0; i < changes; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		if started := c.executions("scale-out") - before; started != 1 {
			t.Fatalf("%d executions started by %d state changes in one second, want 1; answers %q", started, changes, answers)
		}
		scaled := 0
		for i, a := range answers {
			var d struct{ Action, Reason, ErrorType string }
			if err := json.Unmarshal([]byte(a), &d); err != nil || d.Action == "" && d.ErrorType == "" {
				t.Fatalf("state change %d: answer %q", i, a)
			}
			// A throttled or failed read is EventBridge's to deliver again
			// (the rule retries); the local cloud under a burst can give
			// one. It must not have started anything, which the count of
			// executions above already shows.
			if d.ErrorType != "" {
				if d.ErrorType != events.ErrThrottled && d.ErrorType != events.ErrInternal {
					t.Fatalf("state change %d: %s", i, a)
				}
				t.Logf("state change %d answered %s, for EventBridge to deliver again", i, a)
			}
			if d.Action == "scale" {
				scaled++
			}
		}
		if scaled != 1 {
			t.Fatalf("%d answers say they scaled, want 1: %q", scaled, answers)
		}
		c.waitIdle()
	})
}

// executions counts the executions of one of the environment's machines.
func (c *cloud) executions(machine string) int {
	c.t.Helper()
	list, err := sfn.NewFromConfig(c.cfg).ListExecutions(context.Background(), &sfn.ListExecutionsInput{
		StateMachineArn: aws.String("arn:aws:states:us-east-1:123456789012:stateMachine:mediascale-dev-" + machine),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return len(list.Executions)
}

// waitIdle waits, bounded, until no execution of the environment runs.
func (c *cloud) waitIdle() {
	c.t.Helper()
	client := sfn.NewFromConfig(c.cfg)
	waitFor(c.t, "every execution to end", 3*time.Minute, func() bool {
		for _, m := range []string{"scale-out", "scale-in"} {
			list, err := client.ListExecutions(context.Background(), &sfn.ListExecutionsInput{
				StateMachineArn: aws.String("arn:aws:states:us-east-1:123456789012:stateMachine:mediascale-dev-" + m), StatusFilter: "RUNNING",
			})
			if err != nil || len(list.Executions) > 0 {
				return false
			}
		}
		return true
	})
}

// assertRolledBack checks every node of the execution ended FAILED with its
// instance terminated, its record gone, the reason kept, and the lock free.
func (c *cloud) assertRolledBack(t *testing.T, rs ReplaySummary, errorName, detail string) {
	t.Helper()
	nodes := c.nodesOf(rs.Execution)
	if len(nodes) == 0 {
		t.Fatal("the execution planned no nodes")
	}
	for _, n := range nodes {
		st, _ := c.instance(n.InstanceID)
		if n.State != fleet.Failed || st != "terminated" || c.recordWeight(n.ID) != -1 {
			t.Fatalf("node %s: %s, instance %s, record weight %d", n.ID, n.State, st, c.recordWeight(n.ID))
		}
		if !strings.HasPrefix(n.Reason, errorName+": ") || !strings.Contains(n.Reason, detail) {
			t.Fatalf("node %s reason %q, want %s with %q", n.ID, n.Reason, errorName, detail)
		}
	}
	if c.lockHeld() {
		t.Fatal("the pool lock is still held after the failure")
	}
}
