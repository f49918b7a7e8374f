package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
	"github.com/mediascale/mediascale/shared/traffic"
)

// fakeInstances knows one instance tagged for the node and records
// terminations.
type fakeInstances struct {
	tagged     string
	terminated []string
}

func (f *fakeInstances) FindByNode(context.Context, string) (compute.Launched, bool, error) {
	if f.tagged == "" {
		return compute.Launched{}, false, nil
	}
	return compute.Launched{InstanceID: f.tagged}, true, nil
}

func (f *fakeInstances) Terminate(_ context.Context, id string) error {
	f.terminated = append(f.terminated, id)
	return nil
}

// fakeWeights records removed records.
type fakeWeights struct{ removed []string }

func (f *fakeWeights) SetWeight(context.Context, pool.Pool, string, string, int) error { return nil }
func (f *fakeWeights) Remove(_ context.Context, _ pool.Pool, node, _ string) error {
	f.removed = append(f.removed, node)
	return nil
}

var pools = pool.File{Environment: "dev", Pools: []pool.Pool{{Name: "live", Traffic: pool.Traffic{Mode: pool.TrafficRoute53}}}}

func run(t *testing.T, store *fleettest.Memory, inst *fakeInstances, w *fakeWeights, execution string) (Result, error) {
	t.Helper()
	h := NewHandler(func(string) (traffic.Weights, error) { return w, nil }, inst, store, pools, time.Now, telemetry.NewLogger(io.Discard, "rollback"))
	raw, _ := json.Marshal(Request{
		Task:    events.NodeTask{Pool: "live", Node: "n-1", Execution: execution},
		Failure: events.Failure{Error: "ProbeFailed", Cause: `{"errorMessage":"node n-1 failed 5 of 5 probes","errorType":"ProbeFailed"}`},
	})
	return h.Handle()(context.Background(), raw)
}

func TestRollback(t *testing.T) {
	cases := []struct {
		name       string
		node       fleet.Node
		tagged     string
		execution  string
		state      fleet.State
		terminated []string
		errName    string
	}{
		{"a shifting node loses its traffic and instance and ends FAILED with the reason",
			fleet.Node{State: fleet.Shifting, InstanceID: "i-1"}, "", "exec-1", fleet.Failed, []string{"i-1"}, ""},
		{"an instance launched but never recorded is found by its tag and terminated",
			fleet.Node{State: fleet.Provisioning}, "i-orphan", "exec-1", fleet.Failed, []string{"i-orphan"}, ""},
		{"a rollback interrupted half-way finishes the job",
			fleet.Node{State: fleet.RollingBack, InstanceID: "i-1", Reason: "ProbeFailed: node n-1 failed 5 of 5 probes"}, "i-1", "exec-1", fleet.Failed, []string{"i-1"}, ""},
		{"an already failed node is left as it is",
			fleet.Node{State: fleet.Failed, InstanceID: "i-1", Reason: "earlier"}, "", "exec-1", fleet.Failed, nil, ""},
		{"a node of another execution is not touched",
			fleet.Node{State: fleet.Shifting, InstanceID: "i-1"}, "", "exec-2", fleet.Shifting, nil, events.ErrStateConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.node
			n.Pool, n.ID, n.Execution = "live", "n-1", "exec-1"
			store := fleettest.NewMemory(n)
			inst, w := &fakeInstances{tagged: tc.tagged}, &fakeWeights{}
			_, err := run(t, store, inst, w, tc.execution)
			if tc.errName != "" {
				var named events.Named
				if !errors.As(err, &named) || named.ErrorName() != tc.errName {
					t.Fatalf("err = %v, want %s", err, tc.errName)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := store.Node("live", "n-1")
			if got.State != tc.state {
				t.Fatalf("state %s, want %s", got.State, tc.state)
			}
			sort.Strings(inst.terminated)
			if strings.Join(inst.terminated, ",") != strings.Join(tc.terminated, ",") {
				t.Fatalf("terminated %v, want %v", inst.terminated, tc.terminated)
			}
			if tc.state == fleet.Failed && tc.node.State != fleet.Failed {
				if !strings.Contains(got.Reason, "ProbeFailed: node n-1 failed 5 of 5 probes") || len(w.removed) != 1 || got.Weight != 0 {
					t.Fatalf("reason %q, records removed %v, weight %d", got.Reason, w.removed, got.Weight)
				}
			}
		})
	}
}

func TestTrafficOffTakesTheTrafficAloneAndWritesNothing(t *testing.T) {
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", State: fleet.Shifting, Execution: "exec-1", InstanceID: "i-1", Weight: 10, Endpoint: "10.0.0.9"})
	inst, w := &fakeInstances{}, &fakeWeights{}
	h := NewHandler(func(string) (traffic.Weights, error) { return w, nil }, inst, store, pools, time.Now, telemetry.NewLogger(io.Discard, "rollback"))
	raw, _ := json.Marshal(Request{Action: events.RollbackTrafficOff, Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"},
		Failure: events.Failure{Error: "GuardTripped", Cause: `{"errorMessage":"error rate 9 %","errorType":"GuardTripped"}`}})
	res, err := h.Handle()(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.removed) != 1 || len(inst.terminated) != 0 || len(store.Writes) != 0 || res.State != string(fleet.Shifting) {
		t.Fatalf("traffic off: removed %v, terminated %v, table writes %v, result %+v; want the traffic off and nothing else", w.removed, inst.terminated, store.Writes, res)
	}
	raw, _ = json.Marshal(Request{Action: "undo", Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"}})
	if _, err := h.Handle()(context.Background(), raw); !strings.Contains(fmt.Sprint(err), `rollback action "undo"`) {
		t.Fatalf("an unknown action: %v", err)
	}
}
