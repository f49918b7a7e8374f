package healing

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
	"github.com/mediascale/mediascale/shared/traffic"
)

var now = time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)

// fakeStore holds one pool's nodes and records every write.
type fakeStore struct {
	nodes  []fleet.Node
	writes []string
}

func (f *fakeStore) ListNodes(context.Context, string) ([]fleet.Node, error) { return f.nodes, nil }

func (f *fakeStore) SetHealthFailures(_ context.Context, _, id string, failures int) (bool, error) {
	for i := range f.nodes {
		if f.nodes[i].ID == id && f.nodes[i].State == fleet.Active {
			f.nodes[i].HealthFailures = failures
			f.writes = append(f.writes, "failures "+id)
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeStore) Transition(_ context.Context, _, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error) {
	for i := range f.nodes {
		n := &f.nodes[i]
		if n.ID != id {
			continue
		}
		if n.State != from || n.Version != version {
			return fleet.Node{}, events.Conflict(nil, "node %s is %s v%d", id, n.State, n.Version)
		}
		n.State, n.Version = to, n.Version+1
		if c.Weight != nil {
			n.Weight = *c.Weight
		}
		if c.Goal != "" {
			n.Goal = c.Goal
		}
		if c.Execution != "" {
			n.Execution = c.Execution
		}
		if !c.UnhealthyAt.IsZero() {
			n.UnhealthyAt = c.UnhealthyAt
		}
		if !c.Deadline.IsZero() {
			n.Deadline = c.Deadline
		}
		n.Reason = c.Reason
		f.writes = append(f.writes, string(to)+" "+id)
		return *n, nil
	}
	return fleet.Node{}, events.Conflict(nil, "no node %s", id)
}

// fakeProber fails the nodes whose address it lists.
type fakeProber struct{ down map[string]string }

func (f fakeProber) Probe(_ context.Context, ep health.Endpoint, _ pool.Probe) health.Measurement {
	if why, ok := f.down[ep.Host]; ok {
		return health.Measurement{Reason: why}
	}
	return health.Measurement{Healthy: true, MediaOK: true, Reason: "ok"}
}

// fakeSessions answers each address's session count, or an error for
// one whose media server is down.
type fakeSessions map[string]int

func (f fakeSessions) Count(_ context.Context, ep health.Endpoint) (int, error) {
	n, ok := f[ep.Host]
	if !ok {
		return 0, errors.New("connection refused")
	}
	return n, nil
}

type fakeInstances struct{ terminated []string }

func (f *fakeInstances) Terminate(_ context.Context, id string) error {
	f.terminated = append(f.terminated, id)
	return nil
}

// fakeWeights records the nodes whose traffic was removed, and fails as
// Route53 throttling when told to.
type fakeWeights struct {
	removed []string
	err     error
}

func (f *fakeWeights) SetWeight(context.Context, pool.Pool, string, string, int) error { return nil }
func (f *fakeWeights) Remove(_ context.Context, _ pool.Pool, node, _ string) error {
	if f.err != nil {
		return f.err
	}
	f.removed = append(f.removed, node)
	return nil
}

func livePool() pool.Pool {
	return pool.Pool{Name: "live", Traffic: pool.Traffic{Mode: pool.TrafficRoute53}, Probe: pool.Probe{HealthPort: 8080, MediaPort: 1935},
		Drain: pool.Drain{Timeout: pool.Duration(15 * time.Minute)}}
}

func serving(id, ip string) fleet.Node {
	return fleet.Node{Pool: "live", ID: id, State: fleet.Active, Version: 7, Weight: 100, PrivateIP: ip, Endpoint: ip, InstanceID: "i-" + id,
		Heartbeat: &fleet.Heartbeat{At: now.Add(-5 * time.Second), Healthy: true}}
}

// fakeRecords holds a pool's record weights; a reweigh from a weight
// that is no longer the record's changes nothing, as Route53 refuses it.
type fakeRecords struct{ weights map[string]int }

func (f *fakeRecords) Current(context.Context, pool.Pool) (map[string]traffic.Record, error) {
	out := map[string]traffic.Record{}
	for id, w := range f.weights {
		out[id] = traffic.Record{Node: id, Weight: w}
	}
	return out, nil
}

func (f *fakeRecords) Reweigh(_ context.Context, _ pool.Pool, rec traffic.Record, w int) (bool, error) {
	if cur, ok := f.weights[rec.Node]; !ok || cur != rec.Weight {
		return false, nil
	}
	f.weights[rec.Node] = w
	return true, nil
}

// fakeTargets answers a load balancer's view of each address, or fails
// as ELBv2 throttling does; it records the pools it was asked about.
type fakeTargets struct {
	states map[string]traffic.TargetState
	err    error
	asked  []string
}

func (f *fakeTargets) Health(_ context.Context, p pool.Pool) (map[string]traffic.TargetState, error) {
	f.asked = append(f.asked, p.Name)
	return f.states, f.err
}

type rig struct {
	store     *fakeStore
	weights   *fakeWeights
	records   *fakeRecords
	targets   *fakeTargets
	instances *fakeInstances
	h         *Handler
}

func newRig(p pool.Pool, nodes []fleet.Node, down map[string]string, sessions fakeSessions) *rig {
	r := &rig{store: &fakeStore{nodes: nodes}, weights: &fakeWeights{}, instances: &fakeInstances{}, records: &fakeRecords{weights: map[string]int{}},
		targets: &fakeTargets{}}
	for _, n := range nodes {
		if n.State == fleet.Active {
			r.records.weights[n.ID] = traffic.FullWeight
		}
	}
	r.h = NewHandler(pool.File{Environment: "dev", Pools: []pool.Pool{p}}, r.store, fakeProber{down: down}, sessions, r.instances,
		func(string) (traffic.Weights, error) { return r.weights, nil }, r.records, r.targets, func() time.Time { return now }, telemetry.NewLogger(io.Discard, "heal"))
	return r
}

func (r *rig) node(id string) fleet.Node {
	for _, n := range r.store.nodes {
		if n.ID == id {
			return n
		}
	}
	return fleet.Node{}
}

func TestHealthChecks(t *testing.T) {
	silent := serving("b", "10.0.0.2")
	silent.Heartbeat.At = now.Add(-2 * time.Minute)
	sick := serving("b", "10.0.0.2")
	sick.Heartbeat.Healthy, sick.Heartbeat.Reason = false, "nginx /stat: connection refused"
	once := serving("b", "10.0.0.2")
	once.HealthFailures = 1
	recovered := serving("b", "10.0.0.2")
	recovered.HealthFailures = 1
	cases := []struct {
		name     string
		b        fleet.Node
		down     map[string]string
		failures int
		state    fleet.State
		reason   string
	}{
		{"a healthy node is left alone", serving("b", "10.0.0.2"), nil, 0, fleet.Active, ""},
		{"a first failed probe is counted, the node keeps serving", serving("b", "10.0.0.2"), map[string]string{"10.0.0.2": "media port refused"}, 1, fleet.Active, ""},
		{"a silent agent is a failure", silent, nil, 1, fleet.Active, ""},
		{"a second failure in a row takes the node out", once, map[string]string{"10.0.0.2": "media port refused"}, 1, fleet.Draining,
			"unhealthy after 2 failed health checks: probe: media port refused"},
		{"the agent's own verdict counts beside the probe", func() fleet.Node { n := sick; n.HealthFailures = 1; return n }(), nil, 1, fleet.Draining,
			"its agent reports: nginx /stat: connection refused"},
		{"a pass resets the count", recovered, nil, 0, fleet.Active, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(livePool(), []fleet.Node{serving("a", "10.0.0.1"), tc.b}, tc.down, fakeSessions{"10.0.0.1": 3, "10.0.0.2": 3})
			if _, err := r.h.run(context.Background()); err != nil {
				t.Fatal(err)
			}
			b := r.node("b")
			if b.State != tc.state || !strings.Contains(b.Reason, tc.reason) {
				t.Fatalf("node b: %s, reason %q; want %s with %q", b.State, b.Reason, tc.state, tc.reason)
			}
			if tc.state == fleet.Active && b.HealthFailures != tc.failures {
				t.Fatalf("node b has %d failures, want %d", b.HealthFailures, tc.failures)
			}
			if tc.state == fleet.Draining {
				if b.Weight != 0 || b.Goal != events.GoalReplace || b.Execution != fleet.HealerOwner || !b.UnhealthyAt.Equal(now) || !slices.Equal(r.weights.removed, []string{"b"}) {
					t.Fatalf("taken out as %+v, traffic removed from %v", b, r.weights.removed)
				}
			}
			if a := r.node("a"); a.State != fleet.Active || a.HealthFailures != 0 {
				t.Fatalf("the healthy node was touched: %+v", a)
			}
		})
	}
}

func nlbPool() pool.Pool {
	p := livePool()
	p.Traffic = pool.Traffic{Mode: pool.TrafficNLB, LoadBalancer: &pool.LoadBalancer{ListenerArn: "listener", TargetGroupArn: "stable", CanaryTargetGroupArn: "canary", Port: 1935}}
	return p
}

func TestALoadBalancerPoolsNodesAreAlsoJudgedByTheirTargetGroup(t *testing.T) {
	unhealthy := traffic.TargetState{Group: "stable", State: "unhealthy", Reason: "Target.FailedHealthChecks Health checks failed"}
	cases := []struct {
		name     string
		p        pool.Pool
		states   map[string]traffic.TargetState
		err      error
		failures int
		state    fleet.State
		reason   string
		errors   int
	}{
		{"a target the load balancer finds healthy passes", nlbPool(), map[string]traffic.TargetState{"10.0.0.2": {Group: "stable", State: "healthy"}}, nil, 0, fleet.Active, "", 0},
		{"a target the load balancer finds unhealthy fails, though its agent and probe pass", nlbPool(), map[string]traffic.TargetState{"10.0.0.2": unhealthy}, nil, 2, fleet.Draining,
			"its load balancer finds it unhealthy in stable (Target.FailedHealthChecks Health checks failed)", 0},
		{"a target still in its first checks is not judged", nlbPool(), map[string]traffic.TargetState{"10.0.0.2": {Group: "canary", State: "initial", Reason: "Elb.RegistrationInProgress"}}, nil, 0, fleet.Active, "", 0},
		{"unreadable target health leaves the other checks to judge, and says so", nlbPool(), nil,
			&smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}, 0, fleet.Active, "", 1},
		{"a Route53 pool asks no load balancer", livePool(), map[string]traffic.TargetState{"10.0.0.2": unhealthy}, nil, 0, fleet.Active, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := serving("b", "10.0.0.2")
			b.HealthFailures = 1
			r := newRig(tc.p, []fleet.Node{b}, nil, fakeSessions{"10.0.0.2": 3})
			r.targets.states, r.targets.err = tc.states, tc.err
			rep, err := r.h.run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := r.node("b")
			if got.State != tc.state || !strings.Contains(got.Reason, tc.reason) || len(rep.Errors) != tc.errors {
				t.Fatalf("node b %s, reason %q, errors %v; want %s with %q and %d errors", got.State, got.Reason, rep.Errors, tc.state, tc.reason, tc.errors)
			}
			if tc.state == fleet.Active && got.HealthFailures != tc.failures {
				t.Fatalf("node b has %d failures, want %d", got.HealthFailures, tc.failures)
			}
			if asked := len(r.targets.asked); (tc.p.Traffic.LoadBalancer != nil) != (asked == 1) {
				t.Fatalf("target health read %d times for a %s pool", asked, tc.p.Traffic.Mode)
			}
		})
	}
}

func TestAPoolPastItsHourlyBoundTakesTheNodeOutWithoutReplacingIt(t *testing.T) {
	p := livePool()
	p.Healing.MaxReplacementsPerHour = 2
	var nodes []fleet.Node
	for _, id := range []string{"x", "y"} {
		gone := serving(id, "10.0.1."+id)
		gone.State, gone.Goal, gone.UnhealthyAt = fleet.Terminated, events.GoalReplaced, now.Add(-20*time.Minute)
		nodes = append(nodes, gone)
	}
	old := serving("z", "10.0.1.9")
	old.State, old.Goal, old.UnhealthyAt = fleet.Terminated, events.GoalReplaced, now.Add(-2*time.Hour)
	b := serving("b", "10.0.0.2")
	b.HealthFailures = 1
	r := newRig(p, append(nodes, old, b), map[string]string{"10.0.0.2": "health endpoint answered 503"}, fakeSessions{"10.0.0.2": 40})
	if _, err := r.h.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.node("b")
	if got.State != fleet.Draining || got.Weight != 0 || got.Goal == events.GoalReplace ||
		!strings.Contains(got.Reason, "not replaced: the pool replaced 2 nodes in the last hour, its bound") {
		t.Fatalf("node b: %+v", got)
	}
	if n := Replacements(r.store.nodes, now); n != 2 {
		t.Fatalf("%d replacements counted in the last hour, want 2 (the one two hours ago is out of it)", n)
	}
}

func TestATakenOutNodeIsTerminatedOnceItsSessionsEndOrItsTimeoutPasses(t *testing.T) {
	out := func(ip string, deadline time.Time) fleet.Node {
		n := serving("b", ip)
		n.State, n.Execution, n.Goal, n.Deadline, n.Weight, n.Reason = fleet.Draining, fleet.HealerOwner, events.GoalReplaced, deadline, 0, "unhealthy"
		return n
	}
	cases := []struct {
		name     string
		node     fleet.Node
		sessions fakeSessions
		gone     bool
		reason   string
	}{
		{"sessions still live within the timeout keep the node", out("10.0.0.2", now.Add(time.Minute)), fakeSessions{"10.0.0.2": 12}, false, ""},
		{"the last session ended", out("10.0.0.2", now.Add(time.Minute)), fakeSessions{"10.0.0.2": 0}, true, "drained (0 sessions left)"},
		{"a media server that does not answer has nothing to wait for", out("10.0.0.2", now.Add(time.Minute)), fakeSessions{}, true, "does not answer"},
		{"the timeout passed", out("10.0.0.2", now.Add(-time.Second)), fakeSessions{"10.0.0.2": 12}, true, "drain timeout passed with 12 sessions left"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(livePool(), []fleet.Node{tc.node}, nil, tc.sessions)
			rep, err := r.h.run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			b := r.node("b")
			if gone := b.State == fleet.Terminated; gone != tc.gone || !strings.Contains(b.Reason, tc.reason) {
				t.Fatalf("node b %s, reason %q; want gone %v with %q", b.State, b.Reason, tc.gone, tc.reason)
			}
			if tc.gone != slices.Equal(r.instances.terminated, []string{"i-b"}) || tc.gone != slices.Equal(rep.Terminated, []string{"b"}) {
				t.Fatalf("instances terminated %v, report %+v", r.instances.terminated, rep)
			}
			if !slices.Equal(r.weights.removed, []string{"b"}) {
				t.Fatalf("traffic removal is not repeated while the node drains: %v", r.weights.removed)
			}
		})
	}
}

func TestAFailedTrafficRemovalIsRetriedByTheNextRun(t *testing.T) {
	b := serving("b", "10.0.0.2")
	b.HealthFailures = 1
	r := newRig(livePool(), []fleet.Node{b}, map[string]string{"10.0.0.2": "media port refused"}, fakeSessions{"10.0.0.2": 5})
	r.weights.err = &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
	rep, err := r.h.run(context.Background())
	if err != nil || len(rep.Errors) != 1 || r.node("b").State != fleet.Draining {
		t.Fatalf("first run: %+v, %v; node %s", rep, err, r.node("b").State)
	}
	r.weights.err = nil
	if rep, err = r.h.run(context.Background()); err != nil || len(rep.Errors) != 0 || !slices.Equal(r.weights.removed, []string{"b"}) {
		t.Fatalf("second run: %+v, %v; removed %v", rep, err, r.weights.removed)
	}
	raw, _ := json.Marshal(rep)
	if !strings.Contains(string(raw), `"checked":0`) {
		t.Fatalf("a draining node was checked again: %s", raw)
	}
}

func TestRecordWeightsFollowHeadroomAfterTheChecks(t *testing.T) {
	p := livePool()
	p.Alarms.ScaleOut.ConnectionsPerNode = 1500
	busy, fresh, sick := serving("a", "10.0.0.1"), serving("b", "10.0.0.2"), serving("c", "10.0.0.3")
	busy.Heartbeat.Load.Connections = 1350
	sick.HealthFailures = 1
	r := newRig(p, []fleet.Node{busy, fresh, sick}, map[string]string{"10.0.0.3": "media port refused"}, fakeSessions{"10.0.0.3": 0})
	rep, err := r.h.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The sick node's record went with it; the busy node gives up a step
	// of weight to the empty one.
	if rep.Reweighed["a"] != 75 || rep.Reweighed["b"] != 125 || len(rep.Reweighed) != 2 {
		t.Fatalf("reweighed %v, want a 75 and b 125", rep.Reweighed)
	}
	off := false
	p.Traffic.Balance = &off
	r = newRig(p, []fleet.Node{busy, fresh}, nil, fakeSessions{})
	if rep, _ := r.h.run(context.Background()); len(rep.Reweighed) != 0 {
		t.Fatalf("traffic.balance false still reweighed %v", rep.Reweighed)
	}
}

func TestEveryRunTakesTrafficOffNodesOutOfService(t *testing.T) {
	node := func(id, ip string, st fleet.State, deadline time.Duration) fleet.Node {
		n := serving(id, ip)
		n.State, n.Heartbeat = st, nil
		if deadline != 0 {
			n.Deadline = now.Add(deadline)
		}
		return n
	}
	nodes := []fleet.Node{
		serving("active", "10.0.0.1"),
		node("rolling", "10.0.0.2", fleet.RollingBack, 0),
		node("failed", "10.0.0.3", fleet.Failed, 0),
		node("gone", "10.0.0.4", fleet.Terminated, 0),
		node("overdue", "10.0.0.5", fleet.Draining, -10*time.Minute),
		node("draining", "10.0.0.6", fleet.Draining, -time.Minute),
	}
	cases := []struct {
		name   string
		mode   string
		routed []string
		want   []string
	}{
		{"a Route53 pool: weight above 0 on a rolled-back, failed or overdue node comes off", pool.TrafficRoute53,
			[]string{"active", "rolling", "failed", "overdue", "draining"}, []string{"failed", "overdue", "rolling"}},
		{"a Route53 pool: a node already at weight 0 or without a record is left alone", pool.TrafficRoute53,
			[]string{"active"}, nil},
		{"a load-balancer pool: a registered target of such a node comes out", pool.TrafficALB,
			[]string{"active", "rolling", "draining"}, []string{"rolling"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := livePool()
			p.Traffic.Mode = tc.mode
			if tc.mode != pool.TrafficRoute53 {
				p.Traffic.LoadBalancer = &pool.LoadBalancer{TargetGroupArn: "stable", CanaryTargetGroupArn: "canary"}
			}
			r := newRig(p, slices.Clone(nodes), nil, fakeSessions{"10.0.0.1": 3})
			r.records.weights = map[string]int{"failed": 0}
			r.targets.states = map[string]traffic.TargetState{}
			for _, id := range tc.routed {
				r.records.weights[id] = 10
				r.targets.states[r.node(id).Endpoint] = traffic.TargetState{Group: "canary", State: "healthy"}
			}
			rep, err := r.h.run(context.Background())
			if err != nil || len(rep.Errors) != 0 {
				t.Fatalf("run: %v %v", err, rep.Errors)
			}
			slices.Sort(rep.TrafficOff)
			slices.Sort(r.weights.removed)
			if !slices.Equal(rep.TrafficOff, tc.want) || !slices.Equal(r.weights.removed, tc.want) {
				t.Fatalf("traffic taken off %v (report %v), want %v", r.weights.removed, rep.TrafficOff, tc.want)
			}
		})
	}
}
