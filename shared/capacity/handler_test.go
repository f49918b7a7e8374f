package capacity

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// planWith runs the plan handler for the dev live pool without a warm
// pool; planWarm with one.
func planWith(t *testing.T, store *fleettest.Memory, req events.ScaleRequest) (events.Plan, error) {
	t.Helper()
	p := livePool(t)
	p.Capacity.WarmPool = 0
	return runPlan(t, p, store, &terminations{}, req)
}

func runPlan(t *testing.T, p pool.Pool, store *fleettest.Memory, inst *terminations, req events.ScaleRequest) (events.Plan, error) {
	t.Helper()
	h := NewHandler(store, fakeConns{"a": 3, "b": 1}, inst, pool.File{Environment: "dev", Pools: []pool.Pool{p}}, ids(), time.Now, telemetry.NewLogger(io.Discard, "plan"))
	raw, _ := json.Marshal(req)
	return h.Handle()(context.Background(), raw)
}

// terminations records the instances the plan terminates.
type terminations struct{ ids []string }

func (f *terminations) Terminate(_ context.Context, id string) error {
	f.ids = append(f.ids, id)
	return nil
}

func TestPlanRecordsItsNodesOnce(t *testing.T) {
	store := fleettest.NewMemory()
	req := events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "out", Execution: "exec-1"}
	plan, err := planWith(t, store, req)
	if err != nil || len(plan.Nodes) != 2 {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	for _, n := range plan.Nodes {
		rec := store.Node("live-rtmp-use1", n.Node)
		if rec.State != fleet.Pending || rec.Execution != "exec-1" || rec.AZ != n.AZ {
			t.Fatalf("record of %s = %+v", n.Node, rec)
		}
	}
	again, err := planWith(t, store, req)
	if err != nil || len(again.Nodes) != 2 || again.Nodes[0].Node != plan.Nodes[0].Node && again.Nodes[0].Node != plan.Nodes[1].Node {
		t.Fatalf("a retried plan gave %+v, %v", again, err)
	}
	if len(again.Nodes[0].InstanceTypes) != 3 {
		t.Fatalf("a retried plan lost the type preference list: %v", again.Nodes[0].InstanceTypes)
	}
	nodes, _ := store.ListNodes(context.Background(), "live-rtmp-use1")
	if len(nodes) != 2 {
		t.Fatalf("%d nodes after a retried plan, want 2", len(nodes))
	}
}

func TestPlanKeepsTheWarmPool(t *testing.T) {
	p := livePool(t) // warmPool 1
	rev := p.Revision()
	store := fleettest.NewMemory(
		fleet.Node{Pool: p.Name, ID: "w1", State: fleet.Warm, Goal: events.GoalWarm, AZ: "us-east-1a", InstanceID: "i-warm", InstanceType: "c7g.xlarge", Revision: rev},
		fleet.Node{Pool: p.Name, ID: "old", State: fleet.Warm, Goal: events.GoalWarm, AZ: "us-east-1b", InstanceID: "i-old", InstanceType: "c7g.xlarge", Revision: "lt-0:0/stale"},
	)
	inst := &terminations{}
	plan, err := runPlan(t, p, store, inst, events.ScaleRequest{Pool: p.Name, Direction: "out", Execution: "exec-1"})
	if err != nil || len(plan.Nodes) != 3 || !plan.Nodes[0].Warm || plan.Nodes[0].Node != "w1" {
		t.Fatalf("plan = %+v, %v; want w1 started, one new node, one fill", plan, err)
	}
	if w := store.Node(p.Name, "w1"); w.Execution != "exec-1" || w.State != fleet.Pending || w.Goal != events.GoalServe || w.InstanceID != "i-warm" {
		t.Fatalf("warm node = %+v, want claimed by exec-1 back to PENDING to serve, with its instance", w)
	}
	fill := store.Node(p.Name, plan.Nodes[2].Node)
	if fill.Goal != events.GoalWarm || fill.State != fleet.Pending || fill.Revision != rev || plan.Nodes[2].Goal != events.GoalWarm {
		t.Fatalf("fill node = %+v (task %+v), want PENDING for the warm pool at revision %s", fill, plan.Nodes[2], rev)
	}
	// The stale node stays: its replacement is only on its way.
	if len(inst.ids) != 0 || store.Node(p.Name, "old").State != fleet.Warm {
		t.Fatalf("terminated %v before the replacement was parked", inst.ids)
	}

	// The fill is parked; the next upkeep retires the stale node.
	parked := store.Node(p.Name, fill.ID)
	for _, to := range []fleet.State{fleet.Provisioning, fleet.Deploying, fleet.Probing, fleet.Warm} {
		if parked, err = store.Transition(context.Background(), p.Name, parked.ID, parked.State, parked.Version, to, fleet.Change{InstanceID: "i-fill"}); err != nil {
			t.Fatal(err)
		}
	}
	upkeep, err := runPlan(t, p, store, inst, events.ScaleRequest{Pool: p.Name, Direction: "out", Execution: "exec-2", WarmOnly: true})
	if err != nil || len(upkeep.Nodes) != 0 || len(upkeep.Retire) != 1 {
		t.Fatalf("upkeep plan = %+v, %v; want the stale node retired and nothing launched", upkeep, err)
	}
	if old := store.Node(p.Name, "old"); old.State != fleet.Terminated || old.Goal != events.GoalRetire || old.Execution != "exec-2" {
		t.Fatalf("stale node = %+v, want TERMINATED by exec-2 as retired", old)
	}
	if len(inst.ids) != 1 || inst.ids[0] != "i-old" {
		t.Fatalf("terminated %v, want i-old", inst.ids)
	}
	again, err := runPlan(t, p, store, inst, events.ScaleRequest{Pool: p.Name, Direction: "out", Execution: "exec-2", WarmOnly: true})
	if err != nil || len(again.Retire) != 1 || len(again.Nodes) != 0 || len(inst.ids) != 1 {
		t.Fatalf("a retried upkeep plan gave %+v, %v and terminated %v", again, err, inst.ids)
	}
}

func TestPlanRefusesWhatItCannotPlan(t *testing.T) {
	cases := []struct {
		name string
		req  events.ScaleRequest
	}{
		{"an unknown pool is refused", events.ScaleRequest{Pool: "nope", Direction: "out", Execution: "e"}},
		{"an unknown direction is refused", events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "sideways", Execution: "e"}},
		{"a request without execution is refused", events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "out"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := planWith(t, fleettest.NewMemory(), tc.req)
			var invalid *events.InvalidInput
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %T %v", err, err)
			}
		})
	}
}

// fakeConns answers session counts from a map.
type fakeConns map[string]float64

func (f fakeConns) Connections(_ context.Context, _ string, nodes []string, _ time.Duration) (map[string]float64, error) {
	out := map[string]float64{}
	for _, n := range nodes {
		if v, ok := f[n]; ok {
			out[n] = v
		}
	}
	return out, nil
}

func TestPlanInChoosesVictimsWithoutWriting(t *testing.T) {
	store := fleettest.NewMemory(
		fleet.Node{Pool: "live-rtmp-use1", ID: "a", State: fleet.Active},
		fleet.Node{Pool: "live-rtmp-use1", ID: "b", State: fleet.Active},
	)
	plan, err := planWith(t, store, events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "in", Execution: "in-1"})
	if err != nil || len(plan.Nodes) != 1 || plan.Nodes[0].Node != "b" {
		t.Fatalf("plan = %+v, %v; want node b (fewest sessions)", plan, err)
	}
	if len(store.Writes) != 0 {
		t.Fatalf("planning a scale-in wrote %v", store.Writes)
	}
}

func TestAScaleOutPlanHandsThePoolLockBackOnceItsNodesAreWritten(t *testing.T) {
	store := fleettest.NewMemory()
	ctx := context.Background()
	if _, err := store.AcquireLock(ctx, "live-rtmp-use1", "exec-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	plan, err := planWith(t, store, events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "out", Execution: "exec-1", Desired: 2})
	if err != nil || len(plan.Nodes) != 2 {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	if holder, held := store.Locks["live-rtmp-use1"]; held {
		t.Fatalf("lock still held by %s after planning", holder)
	}
	if last := store.Writes[len(store.Writes)-1]; last != "lock of live-rtmp-use1: released by exec-1" {
		t.Fatalf("the lock must go after the nodes are written; last write %q", last)
	}
}

func TestADryRunPlanKeepsTheLockForRelease(t *testing.T) {
	store := fleettest.NewMemory()
	ctx := context.Background()
	if _, err := store.AcquireLock(ctx, "live-rtmp-use1", "exec-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := planWith(t, store, events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "out", Execution: "exec-1", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if store.Locks["live-rtmp-use1"] != "exec-1" {
		t.Fatalf("a dry run released the lock before Release")
	}
}

// throttledCreate fails the nth CreateNode once, as a throttled DynamoDB
// would, and passes everything else to the table.
type throttledCreate struct {
	*fleettest.Memory
	nth, calls int
}

func (f *throttledCreate) CreateNode(ctx context.Context, n fleet.Node) (fleet.Node, error) {
	f.calls++
	if f.calls == f.nth {
		return fleet.Node{}, &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
	}
	return f.Memory.CreateNode(ctx, n)
}

func TestARetriedPlanFinishesThePlanOnRecord(t *testing.T) {
	p := livePool(t)
	p.Capacity.WarmPool = 0
	store := &throttledCreate{Memory: fleettest.NewMemory(), nth: 2}
	h := NewHandler(store, fakeConns{}, &terminations{}, pool.File{Environment: "dev", Pools: []pool.Pool{p}}, ids(), time.Now, telemetry.NewLogger(io.Discard, "plan"))
	raw, _ := json.Marshal(events.ScaleRequest{Pool: p.Name, Direction: "out", Execution: "exec-1", Desired: 3})
	if _, err := h.Handle()(context.Background(), raw); err == nil {
		t.Fatal("the throttled write did not fail the plan step")
	}
	if nodes, _ := store.ListNodes(context.Background(), p.Name); len(nodes) != 1 {
		t.Fatalf("%d nodes written before the failure, want 1", len(nodes))
	}
	// The retry plans again with new ids, but the plan on record wins.
	plan, err := h.Handle()(context.Background(), raw)
	if err != nil || len(plan.Nodes) != 3 {
		t.Fatalf("retried plan = %+v, %v; want the whole plan of 3", plan, err)
	}
	nodes, _ := store.ListNodes(context.Background(), p.Name)
	if len(nodes) != 3 {
		t.Fatalf("%d nodes after the retry, want 3", len(nodes))
	}
	for i, n := range plan.Nodes {
		if got := store.Node(p.Name, n.Node); got.Execution != "exec-1" || got.State != fleet.Pending {
			t.Fatalf("planned node %d (%s) as stored: %+v", i, n.Node, got)
		}
	}
}
