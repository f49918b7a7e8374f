package capacity

import (
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
)

func TestScaleIn(t *testing.T) {
	p := livePool(t) // min 1, scale-in step 1
	p.Capacity.ScaleInStep = 2
	p.Capacity.ScaleOutStep = 2
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	active := func(id string, age time.Duration) fleet.Node {
		return fleet.Node{ID: id, State: fleet.Active, CreatedAt: t0.Add(-age), InstanceID: "i-" + id}
	}
	cases := []struct {
		name   string
		count  int
		nodes  []fleet.Node
		conns  map[string]float64
		want   []string
		reason string
	}{
		{"the least loaded nodes go first", 0,
			[]fleet.Node{active("a", 3*time.Hour), active("b", 2*time.Hour), active("c", time.Hour)},
			map[string]float64{"a": 40, "b": 5, "c": 12}, []string{"b", "c"}, "scale-in step of 2: removing 2 of 3 serving"},
		{"among equally loaded nodes the newest goes first", 0,
			[]fleet.Node{active("old", 3*time.Hour), active("new", time.Minute), active("mid", time.Hour)},
			map[string]float64{"old": 0, "new": 0, "mid": 0}, []string{"new", "mid"}, "removing 2"},
		{"the pool never goes below min", 0,
			[]fleet.Node{active("a", time.Hour), active("b", time.Hour)},
			map[string]float64{"a": 1, "b": 2}, []string{"a"}, "limited to 1 by min 1"},
		{"a pool at min removes nothing", 0,
			[]fleet.Node{active("a", time.Hour)}, map[string]float64{"a": 0}, nil, "at its min of 1"},
		{"shifting and draining nodes are never chosen", 0,
			[]fleet.Node{{ID: "s", State: fleet.Shifting}, {ID: "d", State: fleet.Draining}, active("a", time.Hour), active("b", time.Hour)},
			map[string]float64{"s": 0, "d": 0, "a": 9, "b": 3}, []string{"b", "a"}, "node s is SHIFTING: not a candidate"},
		{"a node without a connection reading is never chosen", 0,
			[]fleet.Node{active("a", time.Hour), active("b", time.Hour), active("c", time.Hour)},
			map[string]float64{"a": 9}, []string{"a"}, "node b has no connection reading"},
		{"no readings at all hold the pool", 0,
			[]fleet.Node{active("a", time.Hour), active("b", time.Hour)}, map[string]float64{}, nil, "no node can be removed now"},
		{"an operator's count replaces the step", 1,
			[]fleet.Node{active("a", time.Hour), active("b", time.Hour), active("c", time.Hour)},
			map[string]float64{"a": 3, "b": 1, "c": 2}, []string{"b"}, "1 requested by an operator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := ScaleIn(events.ScaleRequest{Pool: p.Name, Direction: "in", Execution: "e", Count: tc.count}, p, tc.nodes, tc.conns)
			var got []string
			for _, n := range plan.Nodes {
				got = append(got, n.Node)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("victims %v, want %v (reasons %q)", got, tc.want, plan.Reasons)
			}
			if !strings.Contains(strings.Join(plan.Reasons, "\n"), tc.reason) {
				t.Fatalf("reasons %q lack %q", plan.Reasons, tc.reason)
			}
			if plan.Desired != plan.Current-len(plan.Nodes) {
				t.Fatalf("desired %d, current %d, removing %d", plan.Desired, plan.Current, len(plan.Nodes))
			}
		})
	}
}
