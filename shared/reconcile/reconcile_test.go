package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
)

func TestFind(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	running := map[string]bool{"exec-live": true}
	node := func(id string, st fleet.State, inst, exec string, updated time.Duration) fleet.Node {
		return fleet.Node{ID: id, State: st, InstanceID: inst, Execution: exec, UpdatedAt: now.Add(-updated)}
	}
	drainingFor := func(exec string, deadline time.Time) fleet.Node {
		return fleet.Node{ID: "d", State: fleet.Draining, InstanceID: "i-d", Execution: exec, Deadline: deadline, UpdatedAt: now.Add(-time.Minute)}
	}
	healing := func(deadline time.Time) fleet.Node {
		return fleet.Node{ID: "h", State: fleet.Draining, InstanceID: "i-h", Execution: fleet.HealerOwner, Deadline: deadline, UpdatedAt: now.Add(-time.Hour)}
	}
	cases := []struct {
		name      string
		nodes     []fleet.Node
		instances []Instance
		lock      *fleet.Lease
		want      []string // "Kind/Action/node-or-instance"
	}{
		{"a fleet that matches has no drift",
			[]fleet.Node{node("a", fleet.Active, "i-a", "done", time.Hour)},
			[]Instance{{ID: "i-a", Node: "a", State: "running"}}, nil, nil},
		{"a young tagged instance the table does not know is only reported",
			nil, []Instance{{ID: "i-x", Node: "ghost", State: "running", Launched: now.Add(-time.Minute)}}, nil,
			[]string{"OrphanInstance/report/i-x"}},
		{"an old tagged instance the table does not know is terminated",
			nil, []Instance{{ID: "i-x", Node: "ghost", State: "running", Launched: now.Add(-time.Hour)}}, nil,
			[]string{"OrphanInstance/terminate/i-x"}},
		{"an instance whose node already failed is terminated",
			[]fleet.Node{node("a", fleet.Failed, "i-a", "done", time.Hour)},
			[]Instance{{ID: "i-a", Node: "a", State: "running", Launched: now}}, nil,
			[]string{"OrphanInstance/terminate/i-a"}},
		{"a launch not yet recorded is not an orphan",
			[]fleet.Node{node("a", fleet.Provisioning, "", "exec-live", time.Second)},
			[]Instance{{ID: "i-a", Node: "a", State: "pending", Launched: now.Add(-time.Hour)}}, nil, nil},
		{"an active node whose instance is gone is marked failed",
			[]fleet.Node{node("a", fleet.Active, "i-a", "done", time.Hour)}, nil, nil,
			[]string{"VanishedInstance/mark-failed/a"}},
		{"a draining node whose instance is gone is marked terminated",
			[]fleet.Node{node("a", fleet.Draining, "i-a", "done", time.Minute)},
			[]Instance{{ID: "i-a", Node: "a", State: "terminated"}}, nil,
			[]string{"VanishedInstance/mark-terminated/a"}},
		{"a parked warm node with its stopped instance has no drift",
			[]fleet.Node{node("w", fleet.Warm, "i-w", "done", time.Hour)},
			[]Instance{{ID: "i-w", Node: "w", State: "stopped"}}, nil, nil},
		{"a warm node whose instance is gone is marked failed, so the warm pool is refilled",
			[]fleet.Node{node("w", fleet.Warm, "i-w", "done", time.Hour)},
			[]Instance{{ID: "i-w", Node: "w", State: "terminated"}}, nil,
			[]string{"VanishedInstance/mark-failed/w"}},
		{"a node moved by a running execution is left alone",
			[]fleet.Node{node("a", fleet.Provisioning, "i-a", "exec-live", 2*time.Hour)}, nil, nil, nil},
		{"a node stuck past its deadline with no execution is rolled back",
			[]fleet.Node{node("a", fleet.Probing, "i-a", "dead", 2*time.Hour)},
			[]Instance{{ID: "i-a", Node: "a", State: "running"}}, nil,
			[]string{"StuckNode/roll-back/a"}},
		{"a node whose execution has ended is rolled back at once, not after its deadline",
			[]fleet.Node{node("a", fleet.Shifting, "i-a", "dead", time.Minute)},
			[]Instance{{ID: "i-a", Node: "a", State: "running"}}, nil,
			[]string{"StuckNode/roll-back/a"}},
		{"a node left mid-rollback by an ended execution is finished at once",
			[]fleet.Node{node("a", fleet.RollingBack, "i-a", "dead", time.Second)},
			[]Instance{{ID: "i-a", Node: "a", State: "running"}}, nil,
			[]string{"StuckNode/roll-back/a"}},
		{"a node without an owner in a transitional state within its window is left alone",
			[]fleet.Node{node("a", fleet.Shifting, "i-a", "", time.Minute)},
			[]Instance{{ID: "i-a", Node: "a", State: "running"}}, nil, nil},
		{"a node without an owner past its window is rolled back",
			[]fleet.Node{node("a", fleet.Probing, "i-a", "", 2*time.Hour)},
			[]Instance{{ID: "i-a", Node: "a", State: "running"}}, nil,
			[]string{"StuckNode/roll-back/a"}},
		{"a node draining for a scale-in that ended drains on until its deadline",
			[]fleet.Node{drainingFor("dead", now.Add(10*time.Minute))},
			[]Instance{{ID: "i-d", Node: "d", State: "running"}}, nil,
			[]string{"AbandonedDrain/drain-on/d"}},
		{"a node draining for a scale-in that ended is terminated once its deadline passed",
			[]fleet.Node{drainingFor("dead", now.Add(-time.Second))},
			[]Instance{{ID: "i-d", Node: "d", State: "running"}}, nil,
			[]string{"StuckNode/roll-back/d"}},
		{"a node draining for a scale-in that still runs is left to it",
			[]fleet.Node{drainingFor("exec-live", now.Add(-time.Hour))},
			[]Instance{{ID: "i-d", Node: "d", State: "running"}}, nil, nil},
		{"a node the health checker is draining is its own until past its drain deadline",
			[]fleet.Node{healing(now.Add(10 * time.Minute))},
			[]Instance{{ID: "i-h", Node: "h", State: "running"}}, nil, nil},
		{"a node the health checker left draining long past its deadline is finished",
			[]fleet.Node{healing(now.Add(-time.Hour))},
			[]Instance{{ID: "i-h", Node: "h", State: "running"}}, nil,
			[]string{"StuckNode/roll-back/h"}},
		{"a lock whose execution ended is released",
			nil, nil, &fleet.Lease{Owner: "dead"}, []string{"StaleLock/release/"}},
		{"a lock whose execution runs is kept",
			nil, nil, &fleet.Lease{Owner: "exec-live"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Find(Input{Now: now, Nodes: tc.nodes, Instances: tc.instances, Lock: tc.lock,
				Running: func(e string) bool { return running[e] }, OrphanGrace: 15 * time.Minute, StuckAfter: 30 * time.Minute})
			var keys []string
			for _, f := range got {
				id := f.Node
				if f.Kind == Orphan {
					id = f.Instance
				}
				if f.Kind == StaleLock {
					id = ""
				}
				keys = append(keys, f.Kind+"/"+f.Action+"/"+id)
				if f.Reason == "" {
					t.Errorf("finding %+v has no reason", f)
				}
			}
			if strings.Join(keys, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("findings %v, want %v", keys, tc.want)
			}
		})
	}
}
