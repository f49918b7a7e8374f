package release

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// fakeStore holds nodes, the lock owner and the cooldown marks; with err
// set every call fails as DynamoDB's throttling does.
type fakeStore struct {
	nodes     []fleet.Node
	owner     string
	marked    []string
	cancelled bool
	err       error
}

func (f *fakeStore) DrainsCancelled(context.Context, string, string) (bool, error) {
	return f.cancelled, f.err
}

func (f *fakeStore) ListNodes(context.Context, string) ([]fleet.Node, error) { return f.nodes, f.err }
func (f *fakeStore) ReleaseLock(_ context.Context, _, owner string) (bool, error) {
	if f.err != nil {
		return false, f.err
	}
	if f.owner != owner {
		return false, nil
	}
	f.owner = ""
	return true, nil
}
func (f *fakeStore) MarkScaled(_ context.Context, p, dir string, _ time.Time, _ string) error {
	if f.err != nil {
		return f.err
	}
	f.marked = append(f.marked, p+"/"+dir)
	return nil
}

func TestRelease(t *testing.T) {
	node := func(id string, st fleet.State, exec string) fleet.Node {
		return fleet.Node{Pool: "live", ID: id, State: st, Execution: exec}
	}
	failure := &events.Failure{Error: "InvalidInput", Cause: `{"errorMessage":"plan: pool \"x\" is not configured"}`}
	cases := []struct {
		name      string
		direction string
		nodes     []fleet.Node
		failure   *events.Failure
		status    string
		counted   int
		marked    bool
	}{
		// A scale-out's cooldown runs from its decision, which the trigger
		// marks; release leaves it alone.
		{"every node active is a success", "", []fleet.Node{node("a", fleet.Active, "e1"), node("b", fleet.Active, "e1"), node("old", fleet.Active, "e0")}, nil, Succeeded, 2, false},
		{"some nodes rolled back is partial", "", []fleet.Node{node("a", fleet.Active, "e1"), node("b", fleet.Failed, "e1")}, nil, Partial, 2, false},
		{"every node rolled back is a failure without cooldown", "", []fleet.Node{node("a", fleet.Failed, "e1"), node("b", fleet.Failed, "e1")}, nil, Failed, 2, false},
		{"a failure before any node is a failure with its reason", "", nil, failure, Failed, 0, false},
		{"nothing to add is a success", "", nil, nil, Succeeded, 0, false},
		{"a node parked in the warm pool and a retired one are successes", "", []fleet.Node{
			{Pool: "live", ID: "w", State: fleet.Warm, Goal: events.GoalWarm, Execution: "e1"},
			{Pool: "live", ID: "r", State: fleet.Terminated, Goal: events.GoalRetire, Execution: "e1"}}, nil, Succeeded, 2, false},
		{"a node for the warm pool that went ACTIVE missed its goal", "", []fleet.Node{
			node("a", fleet.Active, "e1"), {Pool: "live", ID: "w", State: fleet.Failed, Goal: events.GoalWarm, Execution: "e1"}}, nil, Partial, 2, false},
		{"a scale-in whose victims terminated is a success", "in", []fleet.Node{node("a", fleet.Terminated, "e1")}, nil, Succeeded, 1, true},
		{"a scale-in whose drains were cancelled is cancelled, without cooldown", "in", []fleet.Node{node("a", fleet.Active, "e1")}, nil, Cancelled, 1, false},
		{"a scale-in whose nodes were put back after failed drains is a failure", "in!", []fleet.Node{node("a", fleet.Active, "e1")}, nil, Failed, 1, false},
		{"a scale-in that removed one node and put one back after a failed drain is partial", "in!",
			[]fleet.Node{node("a", fleet.Terminated, "e1"), node("b", fleet.Active, "e1")}, nil, Partial, 2, true},
		{"a scale-in left draining is a failure", "in", []fleet.Node{node("a", fleet.Draining, "e1")}, nil, Failed, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// "in!" is a scale-in whose drains nobody cancelled.
			store := &fakeStore{nodes: tc.nodes, owner: "e1", cancelled: tc.direction == "in"}
			dir := strings.TrimSuffix(tc.direction, "!")
			if dir == "" {
				dir = "out"
			}
			raw, _ := json.Marshal(Request{Pool: "live", Direction: dir, Execution: "e1", Failure: tc.failure})
			s, err := NewHandler(store, time.Now, telemetry.NewLogger(io.Discard, "release")).Handle()(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != tc.status || len(s.Nodes) != tc.counted || !s.Released || store.owner != "" {
				t.Fatalf("summary %+v, lock owner %q", s, store.owner)
			}
			if (len(store.marked) == 1) != tc.marked {
				t.Fatalf("cooldown marks %v, want marked=%v", store.marked, tc.marked)
			}
			if tc.failure != nil && s.Reason != `InvalidInput: plan: pool "x" is not configured` {
				t.Fatalf("reason %q", s.Reason)
			}
		})
	}
}

func TestAScaleInVictimWhoseDrainNeverStartedIsNamedAndFailsTheRun(t *testing.T) {
	// The plan chose a and b; only a's drain claimed it (and removed it).
	store := &fakeStore{owner: "e1", nodes: []fleet.Node{
		{Pool: "live", ID: "a", State: fleet.Terminated, Execution: "e1"}, {Pool: "live", ID: "b", State: fleet.Active, Execution: "e0"}}}
	plan := &events.Plan{Nodes: []events.NodeTask{{Node: "a"}, {Node: "b"}}}
	run := func(plan *events.Plan) Summary {
		raw, _ := json.Marshal(Request{Pool: "live", Direction: "in", Execution: "e1", Plan: plan})
		store.owner = "e1"
		s, err := NewHandler(store, time.Now, telemetry.NewLogger(io.Discard, "release")).Handle()(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := run(plan); s.Status != Partial || len(s.Nodes) != 2 || s.Nodes[1].Node != "b" || s.Nodes[1].State != "NOT_DRAINED" {
		t.Fatalf("summary %+v", s)
	}
	store.nodes = store.nodes[1:]
	if s := run(&events.Plan{Nodes: []events.NodeTask{{Node: "b"}}}); s.Status != Failed {
		t.Fatalf("a scale-in none of whose drains started: %+v", s)
	}
}

func TestReleasingALockTakenOverIsHarmless(t *testing.T) {
	store := &fakeStore{owner: "someone-else"}
	raw, _ := json.Marshal(Request{Pool: "live", Direction: "out", Execution: "e1"})
	s, err := NewHandler(store, time.Now, telemetry.NewLogger(io.Discard, "release")).Handle()(context.Background(), raw)
	if err != nil || s.Released || store.owner != "someone-else" {
		t.Fatalf("summary %+v, err %v, owner %q", s, err, store.owner)
	}
}

func TestADryRunReportsThePlanAndChangesNothing(t *testing.T) {
	store := &fakeStore{owner: "e1", nodes: []fleet.Node{{Pool: "live", ID: "a", State: fleet.Active, Execution: "e1"}}}
	plan := &events.Plan{DryRun: true, Nodes: []events.NodeTask{{Node: "n-new", AZ: "us-east-1a"}}, Reasons: []string{"scale-out step of 2: adding 1"}}
	raw, _ := json.Marshal(Request{Pool: "live", Direction: "out", Execution: "e1", Plan: plan})
	s, err := NewHandler(store, time.Now, telemetry.NewLogger(io.Discard, "release")).Handle()(context.Background(), raw)
	if err != nil || s.Status != DryRun || len(s.Nodes) != 1 || s.Nodes[0].State != "PLANNED" || !s.Released || len(store.marked) != 0 || len(s.Plan) != 1 {
		t.Fatalf("summary %+v, err %v, marks %v", s, err, store.marked)
	}
}

func TestReleasePublishesTheExecutionMetrics(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	two := 2
	cases := []struct {
		name    string
		req     Request
		nodes   []fleet.Node
		status  string
		metrics map[string]float64
	}{
		{
			name: "a partial scale-out counts the node added, the rollback and the seconds since the alarm",
			req:  Request{Direction: "out", RequestedAt: now.Add(-40 * time.Second)},
			nodes: []fleet.Node{
				{Pool: "live", ID: "a", State: fleet.Active, Execution: "e1"},
				{Pool: "live", ID: "b", State: fleet.Failed, Execution: "e1"},
			},
			status:  Partial,
			metrics: map[string]float64{"ScaleEvents": 1, "NodesAdded": 1, "Rollbacks": 1, "NodesRemoved": 0, "ScaleSeconds": 40},
		},
		{
			name: "a scale-in counts the node removed, its forced sessions and the cancelled drain",
			req:  Request{Direction: "in"},
			nodes: []fleet.Node{
				{Pool: "live", ID: "a", State: fleet.Terminated, Execution: "e1", ForcedSessions: &two},
				{Pool: "live", ID: "b", State: fleet.Active, Execution: "e1"},
			},
			status:  Succeeded,
			metrics: map[string]float64{"ScaleEvents": 1, "NodesRemoved": 1, "ForcedSessions": 2, "DrainsCancelled": 1, "Rollbacks": 0},
		},
		{
			name: "warm-pool upkeep counts nodes parked and retired, not added",
			req:  Request{Direction: "out"},
			nodes: []fleet.Node{
				{Pool: "live", ID: "a", State: fleet.Active, Execution: "e1"},
				{Pool: "live", ID: "w", State: fleet.Warm, Goal: events.GoalWarm, Execution: "e1"},
				{Pool: "live", ID: "r", State: fleet.Terminated, Goal: events.GoalRetire, Execution: "e1"},
			},
			status:  Succeeded,
			metrics: map[string]float64{"NodesAdded": 1, "WarmNodesParked": 1, "WarmNodesRetired": 1, "Rollbacks": 0},
		},
		{
			name:    "a dry run is one scale event that changed nothing",
			req:     Request{Direction: "out", Plan: &events.Plan{DryRun: true}},
			status:  DryRun,
			metrics: map[string]float64{"ScaleEvents": 1, "NodesAdded": 0, "Rollbacks": 0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.req.Pool, tc.req.Execution = "live", "e1"
			raw, _ := json.Marshal(tc.req)
			store := &fakeStore{nodes: tc.nodes, owner: "e1", cancelled: tc.req.Direction == "in"}
			if _, err := NewHandler(store, func() time.Time { return now }, telemetry.NewLogger(&buf, "release")).Handle()(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil {
					t.Fatal(err)
				}
				if m["msg"] == "metrics" && m["ScaleEvents"] != nil {
					doc = m
				}
			}
			if doc == nil {
				t.Fatalf("no execution metrics in\n%s", buf.String())
			}
			if doc["Pool"] != "live" || doc["Direction"] != tc.req.Direction || doc["Status"] != tc.status {
				t.Errorf("dimensions %v %v %v, want live %s %s", doc["Pool"], doc["Direction"], doc["Status"], tc.req.Direction, tc.status)
			}
			for name, want := range tc.metrics {
				if doc[name] != want {
					t.Errorf("%s = %v, want %v", name, doc[name], want)
				}
			}
			if _, ok := doc["ScaleSeconds"]; ok && tc.req.RequestedAt.IsZero() {
				t.Errorf("ScaleSeconds published without a request time")
			}
		})
	}
}

func TestANodeLeftInTheMiddleOfARollbackIsNamedUnfinished(t *testing.T) {
	var buf bytes.Buffer
	store := &fakeStore{owner: "e1", nodes: []fleet.Node{
		{Pool: "live", ID: "a", State: fleet.Failed, Execution: "e1", Reason: "ProbeFailed: refused"},
		{Pool: "live", ID: "b", State: fleet.RollingBack, Execution: "e1", Reason: "ProbeFailed: refused"},
	}}
	raw, _ := json.Marshal(Request{Pool: "live", Direction: "out", Execution: "e1"})
	s, err := NewHandler(store, time.Now, telemetry.NewLogger(&buf, "release")).Handle()(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != Failed || !strings.Contains(s.Reason, "1 node(s) left unfinished, for the reconciler: b (ROLLING_BACK)") {
		t.Fatalf("summary %s: %q", s.Status, s.Reason)
	}
	for _, n := range s.Nodes {
		if n.Unfinished != (n.Node == "b") {
			t.Fatalf("node %s unfinished = %v", n.Node, n.Unfinished)
		}
	}
	// The count reaches the environment's alarm: a metric without
	// dimensions beside the per-pool one.
	var found bool
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m struct {
			NodesUnfinished *float64
			AWS             struct {
				CloudWatchMetrics []struct{ Dimensions [][]string } `json:"CloudWatchMetrics"`
			} `json:"_aws"`
		}
		if json.Unmarshal(line, &m) != nil || m.NodesUnfinished == nil {
			continue
		}
		sets := m.AWS.CloudWatchMetrics[0].Dimensions
		found = *m.NodesUnfinished == 1 && len(sets) == 2 && len(sets[1]) == 0
	}
	if !found {
		t.Fatalf("no NodesUnfinished of 1 with an empty dimension set in\n%s", buf.String())
	}
}

func TestTheLastAttemptWritesTheSummaryWhateverTheTableSays(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "Rate of requests exceeds the allowed throughput"}
	plan := &events.Plan{Nodes: []events.NodeTask{{Pool: "live", Node: "n-1", AZ: "us-east-1a"}, {Pool: "live", Node: "n-2", AZ: "us-east-1b"}}}
	var logs bytes.Buffer
	h := NewHandler(&fakeStore{owner: "e1", err: throttled}, time.Now, telemetry.NewLogger(&logs, "release"))
	for attempt := 0; attempt < events.PersistentRetries; attempt++ {
		raw, _ := json.Marshal(Request{Pool: "live", Direction: "in", Execution: "e1", Plan: plan, Attempt: attempt})
		if _, err := h.Handle()(context.Background(), raw); err == nil {
			t.Fatalf("attempt %d passed over a table that refuses every call: the retrier must try again", attempt)
		}
	}
	raw, _ := json.Marshal(Request{Pool: "live", Direction: "in", Execution: "e1", Plan: plan, Attempt: events.PersistentRetries})
	s, err := h.Handle()(context.Background(), raw)
	if err != nil {
		t.Fatalf("the last attempt failed: %v; its summary is lost", err)
	}
	if s.Status != Failed || s.Released || len(s.Nodes) != 2 || s.Nodes[0].State != "UNKNOWN" ||
		!strings.Contains(s.Reason, "not recorded after every retry: reading the pool's nodes: ") || !strings.Contains(s.Reason, "releasing the pool lock: ") {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(logs.String(), "release could not write everything after every retry") || !strings.Contains(logs.String(), `"n-2"`) {
		t.Fatalf("the log does not carry what release knew:\n%s", logs.String())
	}
}
