package traffic

import (
	"maps"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

func TestBalance(t *testing.T) {
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	// Busy at 1500 sessions a node: 750 is 50 % used.
	p := pool.Pool{Name: "live", Alarms: pool.Alarms{ScaleOut: pool.Thresholds{ConnectionsPerNode: 1500, CPUPercent: 70}}}
	node := func(id string, st fleet.State, conns float64) fleet.Node {
		return fleet.Node{Pool: "live", ID: id, State: st, Heartbeat: &fleet.Heartbeat{At: now.Add(-5 * time.Second), Healthy: true, Load: fleet.Load{Connections: conns}}}
	}
	stale := node("c", fleet.Active, 0)
	stale.Heartbeat.At = now.Add(-time.Hour)
	cases := []struct {
		name    string
		nodes   []fleet.Node
		current map[string]int
		want    map[string]int
	}{
		{"equal nodes keep equal weights", []fleet.Node{node("a", fleet.Active, 750), node("b", fleet.Active, 750)},
			map[string]int{"a": 100, "b": 100}, map[string]int{}},
		{"a new node gains and a busy one loses, one step a run", []fleet.Node{node("a", fleet.Active, 1350), node("b", fleet.Active, 0)},
			map[string]int{"a": 100, "b": 100}, map[string]int{"a": 75, "b": 125}},
		{"the weights reach the headroom's proportion over runs", []fleet.Node{node("a", fleet.Active, 1350), node("b", fleet.Active, 0)},
			map[string]int{"a": 25, "b": 175}, map[string]int{"a": 18, "b": 182}},
		{"a full node keeps a trickle", []fleet.Node{node("a", fleet.Active, 3000), node("b", fleet.Active, 0)},
			map[string]int{"a": 20, "b": 180}, map[string]int{"a": 10, "b": 190}},
		{"a node shifting in, a stale one and one without a record keep theirs",
			[]fleet.Node{node("a", fleet.Active, 1350), node("b", fleet.Active, 0), stale, node("d", fleet.Shifting, 0), node("e", fleet.Active, 0)},
			map[string]int{"a": 100, "b": 100, "c": 100, "d": 30}, map[string]int{"a": 75, "b": 125}},
		{"one ACTIVE node alone has nothing to be weighed against", []fleet.Node{node("a", fleet.Active, 1350)},
			map[string]int{"a": 100}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Balance(p, tc.nodes, tc.current, now)
			if !maps.Equal(got, tc.want) {
				t.Fatalf("Balance = %v, want %v", got, tc.want)
			}
		})
	}
}
