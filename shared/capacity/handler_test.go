package capacity

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/fleet/fleettest"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

func planWith(t *testing.T, store *fleettest.Memory, req events.ScaleRequest) (events.Plan, error) {
	t.Helper()
	p := livePool(t)
	h := NewHandler(store, fakeConns{"a": 3, "b": 1}, pool.File{Environment: "dev", Pools: []pool.Pool{p}}, ids(), time.Now, telemetry.NewLogger(io.Discard, "plan"))
	raw, _ := json.Marshal(req)
	return h.Handle()(context.Background(), raw)
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

func TestPlanClaimsWarmNodes(t *testing.T) {
	store := fleettest.NewMemory(fleet.Node{Pool: "live-rtmp-use1", ID: "w1", State: fleet.Warm, AZ: "us-east-1a", InstanceID: "i-warm", InstanceType: "c7g.xlarge"})
	plan, err := planWith(t, store, events.ScaleRequest{Pool: "live-rtmp-use1", Direction: "out", Execution: "exec-1"})
	if err != nil || len(plan.Nodes) != 2 || !plan.Nodes[0].Warm {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	if w := store.Node("live-rtmp-use1", "w1"); w.Execution != "exec-1" || w.State != fleet.Warm {
		t.Fatalf("warm node = %+v, want claimed by exec-1 and still WARM", w)
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
