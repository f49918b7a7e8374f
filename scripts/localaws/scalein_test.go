package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
)

// scaleInAlarm returns the sample scale-in alarm with a fresh state-change
// time.
func (c *cloud) scaleInAlarm() []byte {
	return c.stateChange("alarm-connections-low.json")
}

// publishConnections plays the nodes' agent: each ACTIVE node's
// Connections datapoint, as the scale-in plan reads it, and its heartbeat
// with that load, as the controller reads it. Every call writes into a
// later minute than the one before (counting up to the present), so a
// node's newest one-minute period carries this call's value alone and not
// the maximum of several scenarios' values.
func (c *cloud) publishConnections(counts map[string]float64) {
	c.t.Helper()
	c.metricMinute++
	at := time.Now().Truncate(time.Minute).Add(time.Duration(c.metricMinute-4) * time.Minute)
	if at.After(time.Now()) {
		c.t.Fatal("more scale-in scenarios than minutes in the plan's window")
	}
	cw := cloudwatch.NewFromConfig(c.cfg)
	for node, v := range counts {
		if _, err := cw.PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Mediascale"), MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String("Connections"), Value: aws.Float64(v), Timestamp: aws.Time(at),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live-rtmp-use1")}, {Name: aws.String("Node"), Value: aws.String(node)}},
		}}}); err != nil {
			c.t.Fatal(err)
		}
	}
	c.heartbeats(counts)
}

// heartbeats plays each node's agent reporting its sessions (and a little
// CPU) now.
func (c *cloud) heartbeats(counts map[string]float64) {
	c.t.Helper()
	for node, v := range counts {
		hb := fleet.Heartbeat{At: time.Now().UTC(), Healthy: true, Load: fleet.Load{Connections: v, CPUPercent: 5}}
		if _, err := c.store.Heartbeat(context.Background(), "live-rtmp-use1", node, hb); err != nil {
			c.t.Fatal(err)
		}
	}
}

// quietWindow replaces the pool's load window with one quiet sample from
// before its 15-minute stabilization window, as if the load had been low
// all that time: the scale-in scenarios start after it.
func (c *cloud) quietWindow() {
	c.t.Helper()
	c.deleteItem("WINDOW")
	quiet := fleet.Sample{At: time.Now().UTC().Add(-20 * time.Minute), Load: fleet.Load{Connections: 1}}
	if err := c.store.RecordSample(context.Background(), "live-rtmp-use1", nil, quiet, time.Hour, fleet.Decision{Reason: "seeded by the test"}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cloud) deleteItem(sk string) {
	c.t.Helper()
	_, err := dynamodb.NewFromConfig(c.cfg).DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(c.table),
		Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "POOL#live-rtmp-use1"}, "sk": &ddbtypes.AttributeValueMemberS{Value: sk},
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *cloud) clearCooldown(direction string) {
	c.t.Helper()
	c.deleteItem("SCALED#" + direction)
}

// mediaNode is the local cloud's nginx-rtmp, from its endpoint file.
func (c *cloud) mediaNode() health.Endpoint {
	c.t.Helper()
	var doc struct {
		Default health.Endpoint `json:"default"`
	}
	if err := json.Unmarshal(c.endpoints, &doc); err != nil {
		c.t.Fatal(err)
	}
	return doc.Default
}

func (c *cloud) waitSessions(ep health.Endpoint, want int) {
	c.t.Helper()
	hc := &http.Client{Timeout: time.Second}
	for i := 0; i < 100; i++ {
		if n, _, err := health.Sessions(context.Background(), hc, ep); err == nil && n == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the media node never reported %d sessions", want)
}

// activeNodes returns the pool's ACTIVE nodes.
func (c *cloud) activeNodes() []fleet.Node {
	return c.nodesWhere(func(n fleet.Node) bool { return n.State == fleet.Active })
}

// drainOne scales the pool out if it has fewer than two active nodes,
// publishes session counts that make the first active node the victim,
// runs beforeScaleIn (to open sessions), and replays a scale-in alarm.
func (c *cloud) drainOne(t *testing.T, beforeScaleIn func()) (victim fleet.Node, rs ReplaySummary, elapsed time.Duration) {
	t.Helper()
	active := c.readyToShrink(t)
	counts := map[string]float64{}
	for i, n := range active {
		counts[n.ID] = float64(100 + i)
	}
	victim = active[0]
	counts[victim.ID] = 1
	c.publishConnections(counts)
	if beforeScaleIn != nil {
		beforeScaleIn()
	}
	start := time.Now()
	rs = c.replay(c.scaleInAlarm())
	return victim, rs, time.Since(start)
}

// readyToShrink readies a scale-in scenario: no faults or cooldowns, at
// least two ACTIVE nodes (a scale-out first if there are fewer), and a
// window that has been quiet for longer than the stabilization window. It
// returns the ACTIVE nodes.
func (c *cloud) readyToShrink(t *testing.T) []fleet.Node {
	t.Helper()
	c.fresh()
	c.clearCooldown("in")
	if active := c.activeNodes(); len(active) < 2 {
		// The nodes there are report overload, so the controller grows.
		busy := map[string]float64{}
		for _, n := range active {
			busy[n.ID] = 3000
		}
		c.heartbeats(busy)
		if out := c.replay(c.alarm()); out.Status != "SUCCEEDED" {
			t.Fatalf("scale-out before the scale-in: %s", out.Status)
		}
	}
	// The load that grew the pool is in its window, which holds scale-in
	// for its stabilization window; these scenarios start after it.
	c.quietWindow()
	return c.activeNodes()
}

func TestScaleInOnTheLocalCloud(t *testing.T) {
	t.Parallel()
	c := newCloud(t)
	ep := c.mediaNode()
	mediaAddr := net.JoinHostPort(ep.Host, strconv.Itoa(ep.MediaPort))

	t.Run("a scale-in alarm while another metric's scale-out alarm is in ALARM removes nothing", func(t *testing.T) {
		active := c.readyToShrink(t)
		quiet := map[string]float64{}
		for _, n := range active {
			quiet[n.ID] = 1
		}
		c.publishConnections(quiet)
		cw := cloudwatch.NewFromConfig(c.cfg)
		setState := func(state cwtypes.StateValue) {
			if _, err := cw.SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{
				AlarmName: aws.String("mediascale-dev-live-rtmp-use1-scale-out-cpu"), StateValue: state, StateReason: aws.String("set by the test"),
			}); err != nil {
				t.Fatal(err)
			}
		}
		setState(cwtypes.StateValueAlarm)
		defer setState(cwtypes.StateValueOk)
		rs := c.replay(c.scaleInAlarm())
		if rs.Status != "NOT_STARTED" || !bytes.Contains(rs.Decision, []byte("the cpu scale-out alarm is in ALARM: holding")) {
			t.Fatalf("scale-in with the CPU scale-out alarm in ALARM: %s %s", rs.Status, rs.Decision)
		}
		if now := c.activeNodes(); len(now) != len(active) {
			t.Fatalf("%d ACTIVE nodes after the held scale-in, want %d", len(now), len(active))
		}
	})

	t.Run("a node without sessions is drained at once and terminated", func(t *testing.T) {
		victim, rs, _ := c.drainOne(t, nil)
		if rs.Status != "SUCCEEDED" {
			t.Fatalf("status %s", rs.Status)
		}
		n, _ := c.store.GetNode(context.Background(), victim.Pool, victim.ID)
		st, _ := c.instance(victim.InstanceID)
		if n.State != fleet.Terminated || st != "terminated" || c.recordWeight(victim.ID) != -1 || n.ForcedSessions == nil || *n.ForcedSessions != 0 {
			t.Fatalf("victim %s: %s, instance %s, record %d, forced %v", n.ID, n.State, st, c.recordWeight(victim.ID), n.ForcedSessions)
		}
		for _, other := range c.activeNodes() {
			if s, _ := c.instance(other.InstanceID); s != "running" || c.recordWeight(other.ID) != 100 {
				t.Fatalf("node %s that was not chosen: instance %s, record %d", other.ID, s, c.recordWeight(other.ID))
			}
		}
		if c.lockHeld() {
			t.Fatal("the pool lock is still held")
		}
	})

	t.Run("a node whose sessions outlive the drain timeout is kept until the timeout and the rest are forced", func(t *testing.T) {
		var pub interface{ Wait() error }
		victim, rs, elapsed := c.drainOne(t, func() {
			pub = medianode.PublishTo(t, mediaAddr, "long-show", 60)
			c.waitSessions(ep, 1)
		})
		if rs.Status != "SUCCEEDED" {
			t.Fatalf("status %s", rs.Status)
		}
		// The local cloud caps the drain timeout at 10 s.
		if elapsed < 10*time.Second {
			t.Fatalf("the node went after %s, before the 10 s drain timeout, with a live session", elapsed)
		}
		n, _ := c.store.GetNode(context.Background(), victim.Pool, victim.ID)
		if n.State != fleet.Terminated || n.ForcedSessions == nil || *n.ForcedSessions != 1 {
			t.Fatalf("victim %s: %s, forced %v; want TERMINATED with 1 forced session", n.ID, n.State, n.ForcedSessions)
		}
		done := make(chan error, 1)
		go func() { done <- pub.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the forced session's publisher is still connected")
		}
	})

	t.Run("a node whose session ends during the drain goes without forcing", func(t *testing.T) {
		victim, rs, elapsed := c.drainOne(t, func() {
			medianode.PublishTo(t, mediaAddr, "short-show", 4)
			c.waitSessions(ep, 1)
		})
		if rs.Status != "SUCCEEDED" {
			t.Fatalf("status %s", rs.Status)
		}
		n, _ := c.store.GetNode(context.Background(), victim.Pool, victim.ID)
		if n.State != fleet.Terminated || n.ForcedSessions == nil || *n.ForcedSessions != 0 {
			t.Fatalf("victim %s: %s, forced %v; want TERMINATED with none forced", n.ID, n.State, n.ForcedSessions)
		}
		if elapsed >= 10*time.Second {
			t.Fatalf("the drain took %s: it waited for the timeout instead of the session's end", elapsed)
		}
	})
}

// drainOutcome is how a scale-in started by drainOne ended.
type drainOutcome struct {
	victim fleet.Node
	rs     ReplaySummary
}

// drainWithSession starts drainOne in the background with a live session
// of the given length on the media node, and returns once a node is
// DRAINING (bounded), with the channel the scale-in's outcome comes on.
func (c *cloud) drainWithSession(t *testing.T, stream string, seconds int) (fleet.Node, <-chan drainOutcome) {
	t.Helper()
	ep := c.mediaNode()
	mediaAddr := net.JoinHostPort(ep.Host, strconv.Itoa(ep.MediaPort))
	done := make(chan drainOutcome, 1)
	go func() {
		victim, rs, _ := c.drainOne(t, func() {
			medianode.PublishTo(t, mediaAddr, stream, seconds)
			c.waitSessions(ep, 1)
		})
		done <- drainOutcome{victim, rs}
	}()
	var draining fleet.Node
	for i := 0; i < 300 && draining.ID == ""; i++ {
		time.Sleep(200 * time.Millisecond)
		all, _ := c.store.ListNodes(context.Background(), "live-rtmp-use1")
		for _, n := range all {
			if n.State == fleet.Draining {
				draining = n
			}
		}
	}
	if draining.ID == "" {
		t.Fatal("no node started draining")
	}
	return draining, done
}

// TestADrainIsNeverCutShort runs drains that something interrupts, on a
// cloud whose drain deadline is 60 s (the local cloud's usual cap is
// 10 s): long enough to interrupt a drain and run the reconciler before it.
func TestADrainIsNeverCutShort(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "MEDIASCALE_MAX_DRAIN_SECONDS=60")
	ep := c.mediaNode()
	t.Run("a scale-in stopped mid-drain leaves its node draining with its session until the deadline", func(t *testing.T) {
		draining, done := c.drainWithSession(t, "kept-show", 120)
		// Stopped as an operator, or a failure past every retry, would:
		// no step of the scale-in runs again, its restore included.
		arn := "arn:aws:states:us-east-1:123456789012:execution:mediascale-dev-scale-in:" + draining.Execution
		if _, err := sfn.NewFromConfig(c.cfg).StopExecution(context.Background(), &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-done:
			// AWS ends a stopped execution ABORTED; moto 5.2.1's
			// interpreter raises on the stop and ends it FAILED
			// (States.Runtime). Either way no step runs again: the node
			// below is still DRAINING, not restored.
			if out.rs.Status != "ABORTED" && out.rs.Status != "FAILED" {
				t.Fatalf("the stopped scale-in ended %s", out.rs.Status)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("the stopped scale-in did not end")
		}
		report := c.reconcile(t)
		n, _ := c.store.GetNode(context.Background(), draining.Pool, draining.ID)
		st, _ := c.instance(n.InstanceID)
		if time.Now().After(n.Deadline) {
			t.Fatalf("the 60 s drain deadline passed before the reconciler's first run ended; nothing was shown (%s)", report)
		}
		if n.State != fleet.Draining || st != "running" || c.recordWeight(n.ID) > 0 || !strings.Contains(report, "AbandonedDrain") {
			t.Fatalf("before its deadline the reconciler cut the drain: node %s, instance %s, record %d; report %s", n.State, st, c.recordWeight(n.ID), report)
		}
		c.waitSessions(ep, 1)
		time.Sleep(time.Until(n.Deadline) + time.Second)
		c.reconcile(t)
		n, _ = c.store.GetNode(context.Background(), draining.Pool, draining.ID)
		if st, _ := c.instance(n.InstanceID); n.State != fleet.Terminated || st != "terminated" {
			t.Fatalf("after its deadline: node %s, instance %s; want it terminated", n.State, st)
		}
	})
	// Last: its overloaded pool starts a pressure loop that grows the
	// pool again in the background.
	t.Run("a scale-out alarm during a drain puts the node back", func(t *testing.T) {
		c.aScaleOutAlarmDuringADrainPutsTheNodeBack(t)
	})
}

// reconcile runs the reconciler once and returns its report.
func (c *cloud) reconcile(t *testing.T) string {
	t.Helper()
	out, err := lambda.NewFromConfig(c.cfg).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("mediascale-dev-reconcile"), Payload: []byte(`{}`)})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("reconcile: %v %s", err, out.Payload)
	}
	return string(out.Payload)
}

func (c *cloud) aScaleOutAlarmDuringADrainPutsTheNodeBack(t *testing.T) {
	_, done := c.drainWithSession(t, "held-show", 60)
	c.fresh()
	// The nodes left in service report overload: the controller wants
	// the pool to grow while a scale-in holds it.
	busy := map[string]float64{}
	for _, n := range c.activeNodes() {
		busy[n.ID] = 3000
	}
	c.heartbeats(busy)
	rs := c.replay(c.alarm())
	if rs.Status != "NOT_STARTED" || !bytes.Contains(rs.Decision, []byte("cancelled the drains of scale-in")) {
		t.Fatalf("the scale-out alarm during the drain: %+v", rs)
	}
	var out drainOutcome
	select {
	case out = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the scale-in did not end")
	}
	var nodes []struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(out.rs.Nodes, &nodes); err != nil || out.rs.Status != "SUCCEEDED" || len(nodes) != 1 || nodes[0].State != "ACTIVE" {
		t.Fatalf("scale-in after the cancel: status %s nodes %s (%v)", out.rs.Status, out.rs.Nodes, err)
	}
	n, _ := c.store.GetNode(context.Background(), out.victim.Pool, out.victim.ID)
	st, _ := c.instance(n.InstanceID)
	if n.State != fleet.Active || n.Weight != 100 || c.recordWeight(n.ID) != 100 || st != "running" || n.Reason != "drain cancelled: the pool asked to grow" {
		t.Fatalf("node after the cancel: %s weight %d record %d instance %s reason %q", n.State, n.Weight, c.recordWeight(n.ID), st, n.Reason)
	}
}
