package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/internal/rtmpclient"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/dispatch"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// sessionsOn sums what the agents of the pool's ACTIVE nodes last reported.
func (c *cloud) sessionsOn() map[string]int {
	out := map[string]int{}
	for _, n := range c.nodesWhere(func(n fleet.Node) bool { return n.State == fleet.Active }) {
		if n.Heartbeat != nil {
			out[n.ID] = int(n.Heartbeat.Load.Connections)
		}
	}
	return out
}

// fallbackStore is the node table of the local cloud's second region.
func (c *cloud) fallbackStore() *fleet.Store {
	c.t.Helper()
	ctx := context.Background()
	region := c.env["MEDIASCALE_FALLBACK_REGION"]
	name := coldstart.TableParameter(c.env["MEDIASCALE_FALLBACK_ENV"])
	out, err := ssm.NewFromConfig(c.cfg, func(o *ssm.Options) { o.Region = region }).GetParameter(ctx, &ssm.GetParameterInput{Name: &name})
	if err != nil {
		c.t.Fatalf("the second region's table name: %v", err)
	}
	db := dynamodb.NewFromConfig(c.cfg, func(o *dynamodb.Options) { o.Region = region })
	return fleet.NewStore(db, aws.ToString(out.Parameter.Value), time.Now)
}

// TestSessionsGoToHealthyNodesWithRoom runs the deployed dispatcher behind
// its function URL and the health checker on the closed loop (LOOP=1):
// two nodes of real nginx-rtmp with their agents, a pool held at two nodes
// (scripts/localaws/testdata/dispatch.yaml: viewers to 8 sessions a node,
// premium to 10, publishers to 12), and its fallback deployed as a second
// stack in us-west-2 with one node of its own
// (testdata/dispatch-usw2.yaml). Every session the dispatcher hands out is
// played on the node it names; then one node's media server is killed.
func TestSessionsGoToHealthyNodesWithRoom(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "LOOP=1", "POOLS=scripts/localaws/testdata/dispatch.yaml",
		"FALLBACK_ENV=devusw2", "FALLBACK_POOLS=scripts/localaws/testdata/dispatch-usw2.yaml")
	ctx := context.Background()
	west := c.fallbackStore()
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := dispatch.NewClient(c.env["MEDIASCALE_DISPATCH_URL"], c.cfg.Region, aws.NewCredentialsCache(credentialsOf(creds)), &http.Client{Timeout: 30 * time.Second})
	waitFor(t, "two ACTIVE nodes reporting", 3*time.Minute, func() bool { return len(c.sessionsOn()) == 2 })
	waitFor(t, "the fallback's node ACTIVE in us-west-2", 2*time.Minute, func() bool {
		nodes, err := west.ListNodes(ctx, "live-rtmp-usw2")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.State == fleet.Active && n.Heartbeat != nil {
				return true
			}
		}
		return false
	})
	p := &players{}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	t.Cleanup(p.stop)
	perNode := map[string]int{}
	play := func(a dispatch.Answer) {
		t.Helper()
		if ip := net.ParseIP(a.Endpoint); ip == nil || !ip.IsLoopback() {
			t.Fatalf("dispatched to %q: the local cloud's nodes are on loopback", a.Endpoint)
		}
		ready := make(chan struct{})
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = rtmpclient.Play(p.ctx, net.JoinHostPort(a.Endpoint, strconv.Itoa(a.Port)), "live", "show", ready)
		}()
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatalf("session on %s did not start", a.Endpoint)
		}
		perNode[a.Node]++
	}
	// A spilled session is played on the fallback region's node, which
	// the local cloud serves on a loopback subnet of its own.
	playSpilled := func(a dispatch.Answer) {
		t.Helper()
		play(a)
		perNode[a.Node]--
		if perNode[a.Node] == 0 {
			delete(perNode, a.Node)
		}
	}

	t.Run("an unsigned request is refused by the function URL", func(t *testing.T) {
		res, err := http.Get(c.env["MEDIASCALE_DISPATCH_URL"] + dispatch.Route + "?pool=live-rtmp-use1&class=viewer")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("unsigned: %d, want 403", res.StatusCode)
		}
	})

	t.Run("a bad request says why", func(t *testing.T) {
		_, err := client.Dispatch(ctx, "live-rtmp-use1", "vip")
		var rej *dispatch.Rejection
		if !errors.As(err, &rej) || rej.Status != http.StatusBadRequest || rej.Reason == "" {
			t.Fatalf("class vip: %v", err)
		}
		if _, err := client.Dispatch(ctx, "vod-use1", "viewer"); !errors.As(err, &rej) || rej.Status != http.StatusNotFound {
			t.Fatalf("unknown pool: %v", err)
		}
	})

	t.Run("sessions spread over the nodes by their room", func(t *testing.T) {
		for i := 0; i < 12; i++ {
			a, err := client.Dispatch(ctx, "live-rtmp-use1", "viewer")
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			play(a)
		}
		if len(perNode) != 2 {
			t.Fatalf("12 sessions went to %v: both nodes had room", perNode)
		}
		for id, n := range perNode {
			if n < 5 || n > 7 {
				t.Fatalf("sessions per node %v (%s has %d): two equal nodes should share about evenly", perNode, id, n)
			}
		}
	})

	t.Run("viewers past the pool's ceiling go to the fallback region until it is full too, while publishers stay", func(t *testing.T) {
		// The dispatcher counts what it handed out since each agent's
		// last report, so it turns viewers away as the nodes reach 8
		// sessions, not an agent interval later.
		var rej *dispatch.Rejection
		spilled := map[string]int{}
		late := 0
		for i := 0; i < 40; i++ {
			a, err := client.Dispatch(ctx, "live-rtmp-use1", "viewer")
			if errors.As(err, &rej) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			// A node may show room for one more viewer after the pool
			// spilled: a session handed to it just before its agent's
			// report and connected just after is in neither count until
			// the next report. Any more, or one to a node with real room,
			// is a viewer spilled while the pool could take it.
			if a.SpilledFrom == "" && len(spilled) > 0 {
				if late++; late > 2 || a.UtilizationPercent < 85 {
					t.Fatalf("a viewer kept in us-east-1, %d after the pool had turned viewers away: %+v", late, a)
				}
				t.Logf("a viewer kept in us-east-1 after the pool had spilled, its node counted at %.1f%%", a.UtilizationPercent)
			}
			if a.SpilledFrom != "" {
				if a.SpilledFrom != "live-rtmp-use1" || a.Pool != "live-rtmp-usw2" || a.Region != "us-west-2" || a.SpillReason == "" {
					t.Fatalf("a spilled answer without its pool, region or reason: %+v", a)
				}
				spilled[a.Node]++
				playSpilled(a)
				continue
			}
			play(a)
		}
		if rej == nil || rej.Status != http.StatusServiceUnavailable || rej.RetryAfter != 2*time.Second || !dispatch.IsRefused(rej) {
			t.Fatalf("viewers admitted %v, spilled %v, then %v; want a 503 with Retry-After 2 s", perNode, spilled, rej)
		}
		for id, n := range perNode {
			if n < 8 || n > 9 {
				t.Fatalf("viewers admitted %v: %s has %d, the viewer ceiling is 8 a node", perNode, id, n)
			}
		}
		if len(spilled) != 1 || sum(spilled) < 8 || sum(spilled) > 9 {
			t.Fatalf("viewers spilled %v: the fallback's one node takes 8", spilled)
		}
		if !strings.Contains(rej.Reason, "fallback devusw2/live-rtmp-usw2 (us-west-2): every node of pool live-rtmp-usw2") {
			t.Fatalf("the refusal does not say the fallback is full: %s", rej.Reason)
		}
		t.Logf("viewers admitted %v, spilled to us-west-2 %v, then refused: %s", perNode, spilled, rej.Reason)
		a, err := client.Dispatch(ctx, "live-rtmp-use1", "publisher")
		if err != nil || a.SpilledFrom != "" || a.Region != "us-east-1" {
			t.Fatalf("a publisher with both nodes full for viewers: %+v %v", a, err)
		}
		play(a)
	})

	t.Run("an operator asks the dispatcher with msctl", func(t *testing.T) {
		msctl := c.msctl(t)
		out, err := msctl("dispatch", "live-rtmp-use1", "--class", "viewer")
		if err == nil || !strings.Contains(out, `"error": "Refused"`) {
			t.Fatalf("msctl dispatch of a viewer: %v\n%s", err, out)
		}
		out, err = msctl("dispatch", "live-rtmp-use1", "--class", "publisher")
		var a dispatch.Answer
		if err != nil || json.Unmarshal([]byte(out), &a) != nil || a.Node == "" || a.Class != "publisher" {
			t.Fatalf("msctl dispatch of a publisher: %v\n%s", err, out)
		}
		play(a)
	})

	t.Run("refusals and spills reach CloudWatch per pool and class", func(t *testing.T) {
		cw := cloudwatch.NewFromConfig(c.cfg)
		for _, metric := range []string{telemetry.SessionsRefused, telemetry.SessionsSpilled} {
			waitFor(t, "a "+metric+" datapoint for viewers", time.Minute, func() bool {
				out, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
					Namespace: aws.String(telemetry.Namespace), MetricName: aws.String(metric),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live-rtmp-use1")}, {Name: aws.String("Class"), Value: aws.String("viewer")}},
					StartTime:  aws.Time(time.Now().Add(-10 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
					Period: aws.Int32(60), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum},
				})
				if err != nil {
					t.Fatal(err)
				}
				total := 0.0
				for _, d := range out.Datapoints {
					total += aws.ToFloat64(d.Sum)
				}
				return total >= 1
			})
		}
	})

	t.Run("the controller counts the refused sessions as demand", func(t *testing.T) {
		// Sixty more refusals within the minute, of clients told to ask
		// again in 2 s: at least two sessions waiting outside the pool
		// (more when the minute is young).
		for i := 0; i < 60; i++ {
			if _, err := client.Dispatch(ctx, "live-rtmp-use1", "viewer"); !dispatch.IsRefused(err) {
				t.Fatalf("viewer %d with the pool full for viewers: %v", i, err)
			}
		}
		var last fleet.Decision
		counted := regexp.MustCompile(`counting (\d+) sessions the dispatcher refused`)
		waitFor(t, "a decision that counts at least two refused sessions", time.Minute, func() bool {
			d, ok, err := c.store.LastDecision(ctx, "live-rtmp-use1")
			last = d
			m := counted.FindStringSubmatch(d.Reason)
			if err != nil || !ok || m == nil {
				return false
			}
			n, _ := strconv.Atoi(m[1])
			return n >= 2
		})
		t.Logf("decision: %s", last.Reason)
	})

	t.Run("a node whose media server dies loses its traffic, is replaced and terminated", func(t *testing.T) {
		p.stop()
		victims := c.nodesWhere(func(n fleet.Node) bool { return n.State == fleet.Active })
		if len(victims) != 2 {
			t.Fatalf("%d ACTIVE nodes before the kill, want 2", len(victims))
		}
		victim := victims[0]
		pidFile := filepath.Join(c.state, "nodes", "dev", victim.InstanceID, "nginx.pid")
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("stopping the media server of %s: %v", victim.ID, err)
		}
		// The checker runs every 10 s here (the minute's schedule, six
		// times as often) and takes a node out after two failures.
		waitFor(t, "the dead node's traffic off", time.Minute, func() bool {
			return !c.recordServes(victim.Endpoint)
		})
		off := time.Since(killed)
		out, err := c.store.GetNode(ctx, victim.Pool, victim.ID)
		if err != nil || out.State.Serving() || !strings.Contains(out.Reason, "unhealthy after 2 failed health checks") {
			t.Fatalf("the dead node: %+v, %v", out, err)
		}
		t.Logf("traffic off %s after the kill: %s", off.Round(100*time.Millisecond), out.Reason)
		var replacement fleet.Node
		waitFor(t, "a replacement serving", 3*time.Minute, func() bool {
			fresh := c.nodesWhere(func(n fleet.Node) bool {
				return n.State == fleet.Active && n.ID != victims[1].ID && n.ID != victim.ID && c.recordServes(n.Endpoint)
			})
			if len(fresh) == 1 {
				replacement = fresh[0]
			}
			return len(fresh) == 1
		})
		t.Logf("replacement %s serving %s after the kill", replacement.ID, time.Since(killed).Round(100*time.Millisecond))
		waitFor(t, "the dead node terminated with its instance", time.Minute, func() bool {
			n, err := c.store.GetNode(ctx, victim.Pool, victim.ID)
			st, _ := c.instance(victim.InstanceID)
			return err == nil && n.State == fleet.Terminated && (st == "terminated" || st == "shutting-down")
		})
		// Nothing orphaned: every running instance belongs to a serving
		// node, and the pool is back at its two nodes.
		waitFor(t, "the pool back at two serving nodes and no orphan", time.Minute, func() bool {
			serving := c.nodesWhere(func(n fleet.Node) bool { return n.State.Serving() })
			for _, n := range serving {
				if st, _ := c.instance(n.InstanceID); st != "running" {
					return false
				}
			}
			return len(serving) == 2 && c.runningInstances() == 2
		})
		for _, n := range c.nodesWhere(func(fleet.Node) bool { return true }) {
			t.Logf("node %s %s goal %q: %s", n.ID, n.State, n.Goal, n.Reason)
		}
		if gone, _ := c.store.GetNode(ctx, victim.Pool, victim.ID); gone.Goal != events.GoalReplaced {
			t.Fatalf("the dead node's replacement was never marked started: goal %q", gone.Goal)
		}

		// Load-aware weights: sessions on the old node, none on its new
		// neighbour, and the records lean toward the new one.
		survivor, _ := c.store.GetNode(ctx, victims[1].Pool, victims[1].ID)
		busy := &players{}
		busy.ctx, busy.cancel = context.WithCancel(context.Background())
		t.Cleanup(busy.stop)
		for i := 0; i < 6; i++ {
			ready := make(chan struct{})
			busy.wg.Add(1)
			go func() {
				defer busy.wg.Done()
				_ = rtmpclient.Play(busy.ctx, net.JoinHostPort(survivor.Endpoint, "1935"), "live", "show", ready)
			}()
			select {
			case <-ready:
			case <-time.After(5 * time.Second):
				t.Fatalf("session %d on %s did not start", i, survivor.Endpoint)
			}
		}
		waitFor(t, "the busy node's record lighter than the new one's", 2*time.Minute, func() bool {
			w := c.recordWeights()
			return w[survivor.Endpoint] > 0 && w[survivor.Endpoint] < w[replacement.Endpoint]
		})
		w := c.recordWeights()
		t.Logf("record weights with 6 sessions on %s and none on %s: %d and %d", survivor.ID, replacement.ID, w[survivor.Endpoint], w[replacement.Endpoint])
	})
}

// recordWeights reads the weighted records' weights by address.
func (c *cloud) recordWeights() map[string]int64 {
	c.t.Helper()
	r53 := route53.NewFromConfig(c.cfg)
	zones, err := r53.ListHostedZones(context.Background(), &route53.ListHostedZonesInput{})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, z := range zones.HostedZones {
		sets, err := r53.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: z.Id})
		if err != nil {
			c.t.Fatal(err)
		}
		for _, r := range sets.ResourceRecordSets {
			if r.Weight != nil && len(r.ResourceRecords) > 0 {
				out[aws.ToString(r.ResourceRecords[0].Value)] = *r.Weight
			}
		}
	}
	return out
}

// recordServes reports whether the pool's weighted record sends any
// traffic to addr.
func (c *cloud) recordServes(addr string) bool { return c.recordWeights()[addr] > 0 }

// runningInstances counts the cloud's running or pending instances.
func (c *cloud) runningInstances() int {
	c.t.Helper()
	out, err := ec2.NewFromConfig(c.cfg).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if st := i.State.Name; st == ec2types.InstanceStateNameRunning || st == ec2types.InstanceStateNamePending {
				n++
			}
		}
	}
	return n
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// credentialsOf serves fixed credentials.
type credentialsOf aws.Credentials

func (c credentialsOf) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(c), nil
}
