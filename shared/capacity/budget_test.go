package capacity

import (
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

func TestAllocate(t *testing.T) {
	live := func(holding, wants int) Claim {
		return Claim{Pool: "live", Priority: 20, VCPUs: 4, Min: 2, Holding: holding, Wants: wants}
	}
	voice := func(holding, wants int) Claim {
		return Claim{Pool: "voice", Priority: 10, VCPUs: 2, Min: 2, Holding: holding, Wants: wants}
	}
	preemptible := func(c Claim) Claim { c.Preemptible = true; return c }
	cases := []struct {
		name   string
		budget pool.Budget
		claims []Claim
		want   map[string]int
		reason map[string]string
	}{
		{"without a budget every pool gets what it wants", pool.Budget{},
			[]Claim{live(4, 30), voice(4, 30)}, map[string]int{"live": 30, "voice": 30}, nil},
		{"the pool of higher priority grows first when vCPUs run short", pool.Budget{VCPUs: 40},
			[]Claim{voice(4, 8), live(4, 8)}, map[string]int{"live": 8, "voice": 4},
			map[string]string{"voice": "budget of 40 vCPUs leaves it 0 of the 4 more nodes it wants"}},
		{"what the higher pool leaves goes to the next", pool.Budget{VCPUs: 44},
			[]Claim{voice(4, 8), live(4, 8)}, map[string]int{"live": 8, "voice": 6}, nil},
		{"a lower pool keeps its serving nodes however much a higher one wants", pool.Budget{VCPUs: 24},
			[]Claim{voice(4, 4), live(4, 10)}, map[string]int{"live": 4, "voice": 4},
			map[string]string{"live": "leaves it 0 of the 6 more"}},
		{"a preemptible lower pool gives nodes to a higher one down to its min", pool.Budget{VCPUs: 24},
			[]Claim{preemptible(voice(4, 4)), live(4, 10)}, map[string]int{"live": 5, "voice": 2},
			map[string]string{"voice": "preempted: gives 2 node(s) to pool live", "live": "leaves it 1 of the 6 more"}},
		{"nodes given that do not add up to a node of the taker's size are handed back", pool.Budget{VCPUs: 22},
			[]Claim{preemptible(voice(3, 3)), live(4, 6)}, map[string]int{"live": 4, "voice": 3}, nil},
		{"the node budget binds as the vCPU budget does", pool.Budget{Nodes: 10},
			[]Claim{voice(3, 6), live(3, 6)}, map[string]int{"live": 6, "voice": 4}, nil},
		{"pools of one priority share in name order", pool.Budget{Nodes: 7},
			[]Claim{{Pool: "b", VCPUs: 2, Holding: 2, Wants: 4}, {Pool: "a", VCPUs: 2, Holding: 2, Wants: 4}}, map[string]int{"a": 4, "b": 3}, nil},
		{"a pool that shrinks is not held", pool.Budget{Nodes: 4},
			[]Claim{voice(3, 2), live(3, 3)}, map[string]int{"live": 3, "voice": 3}, nil},
		{"an environment already over its budget keeps what runs and grows nothing", pool.Budget{VCPUs: 8},
			[]Claim{voice(4, 5), live(4, 5)}, map[string]int{"live": 4, "voice": 4}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Allocate(tc.budget, tc.claims)
			for name, ceiling := range tc.want {
				if got[name].Ceiling != ceiling {
					t.Fatalf("%s: ceiling %d (%s), want %d; all %+v", name, got[name].Ceiling, got[name].Reason, ceiling, got)
				}
			}
			for name, reason := range tc.reason {
				if !strings.Contains(got[name].Reason, reason) {
					t.Fatalf("%s: reason %q, want it to say %q", name, got[name].Reason, reason)
				}
			}
		})
	}
}

func TestWithin(t *testing.T) {
	grow := Recommendation{Direction: Grow, Current: 4, Desired: 8, Change: 4, Reason: "load calls for 8 nodes"}
	cases := []struct {
		name      string
		rec       Recommendation
		share     Share
		direction string
		desired   int
	}{
		{"growth within the share is untouched", grow, Share{Ceiling: 8}, Grow, 8},
		{"growth past the share is cut to it", grow, Share{Ceiling: 6, Reason: "budget"}, Grow, 6},
		{"a share with nothing left holds the pool", grow, Share{Ceiling: 4, Reason: "budget"}, Hold, 4},
		{"a preempted pool shrinks to its share", Recommendation{Direction: Hold, Current: 4, Desired: 4, Reason: "within target"},
			Share{Ceiling: 2, Reason: "preempted"}, Shrink, 2},
		{"a shrinking pool's own decision stands", Recommendation{Direction: Shrink, Current: 4, Desired: 3, Change: -1}, Share{Ceiling: 4}, Shrink, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Within(tc.rec, tc.share)
			if got.Direction != tc.direction || got.Desired != tc.desired || got.Change != got.Desired-got.Current {
				t.Fatalf("got %s to %d (change %d), want %s to %d", got.Direction, got.Desired, got.Change, tc.direction, tc.desired)
			}
			if tc.share.Reason != "" && got.Desired != tc.rec.Desired && !strings.HasSuffix(got.Reason, tc.share.Reason) {
				t.Fatalf("reason %q does not say the share's", got.Reason)
			}
		})
	}
}

func TestLastReportedReadsEveryHeartbeatOfTheSpan(t *testing.T) {
	p := livePool(t)
	at := func(n fleet.Node, ago time.Duration) fleet.Node {
		n.Heartbeat.At = now.Add(-ago)
		return n
	}
	sick := reporting("u", fleet.Active, 2400, 10)
	sick.Heartbeat.Healthy = false
	gone := reporting("g", fleet.Terminated, 2400, 10)
	cases := []struct {
		name  string
		nodes []fleet.Node
		want  int
	}{
		{"fresh nodes count their load", []fleet.Node{reporting("a", fleet.Active, 1200, 10), reporting("b", fleet.Active, 1200, 10)}, 2},
		{"a node whose heartbeat is late still counts what it last said", []fleet.Node{at(reporting("a", fleet.Active, 3600, 10), time.Minute)}, 3},
		{"an unhealthy node's load counts", []fleet.Node{sick}, 2},
		{"a heartbeat older than the span does not count", []fleet.Node{at(reporting("a", fleet.Active, 3600, 10), 3*time.Minute)}, 0},
		{"a node that no longer serves does not count", []fleet.Node{gone}, 0},
		{"never more than the pool's max", []fleet.Node{reporting("a", fleet.Active, 100000, 10)}, p.Capacity.Max},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := LastReported(p, tc.nodes, now, 2*time.Minute); got != tc.want {
				t.Fatalf("LastReported = %d, want %d", got, tc.want)
			}
		})
	}
}
