package dispatch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

var now = time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)

// livePool scales on 1500 connections, 70 % CPU and 800 Mbit/s a node,
// so its targets (80 %) are 1200 connections, 56 % and 640 Mbit/s.
func livePool() pool.Pool {
	return pool.Pool{Name: "live", Alarms: pool.Alarms{ScaleOut: pool.Thresholds{ConnectionsPerNode: 1500, CPUPercent: 70, BandwidthMbpsPerNode: 800}}}
}

func serving(id string, st fleet.State, conns, cpu float64) fleet.Node {
	return fleet.Node{Pool: "live", ID: id, State: st, Weight: 100, Endpoint: "127.0.0." + strings.TrimPrefix(id, "n"),
		Heartbeat: &fleet.Heartbeat{At: now.Add(-5 * time.Second), Healthy: true, Load: fleet.Load{Connections: conns, CPUPercent: cpu}}}
}

var (
	viewer  = pool.Class{Name: "viewer", CeilingPercent: 90}
	premium = pool.Class{Name: "premium", CeilingPercent: 110}
)

func TestChoose(t *testing.T) {
	shifting := serving("n4", fleet.Shifting, 100, 5)
	shifting.Weight = 10
	stale := serving("n5", fleet.Active, 0, 0)
	stale.Heartbeat.At = now.Add(-time.Minute)
	sick := serving("n6", fleet.Active, 0, 0)
	sick.Heartbeat.Healthy = false
	warm := serving("n7", fleet.Active, 0, 0)
	warm.Goal = events.GoalWarm
	cases := []struct {
		name   string
		nodes  []fleet.Node
		class  pool.Class
		node   string
		refuse string
	}{
		{"the node with the most headroom gets the session",
			[]fleet.Node{serving("n1", fleet.Active, 900, 20), serving("n2", fleet.Active, 100, 5), serving("n3", fleet.Active, 500, 10)}, viewer, "n2", ""},
		{"the busiest metric decides a node's headroom",
			[]fleet.Node{serving("n1", fleet.Active, 100, 50), serving("n2", fleet.Active, 600, 10)}, viewer, "n2", ""},
		{"a node shifting in counts against its step's share of the target",
			[]fleet.Node{shifting, serving("n2", fleet.Active, 600, 10)}, viewer, "n2", ""},
		{"stale, unhealthy, draining and warm nodes take nothing",
			[]fleet.Node{stale, sick, warm, serving("n8", fleet.Draining, 0, 0)}, premium, "", "no healthy serving node"},
		{"a class is refused when every node is at its ceiling",
			[]fleet.Node{serving("n1", fleet.Active, 1400, 20), serving("n2", fleet.Active, 1450, 20)}, viewer, "", "at or above 90% of its scale-out threshold"},
		{"a higher class is still admitted where a lower one is refused",
			[]fleet.Node{serving("n1", fleet.Active, 1400, 20), serving("n2", fleet.Active, 1450, 20)}, premium, "n1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSnapshot(livePool(), tc.nodes, now)
			c, err := s.Choose(tc.class, rand.New(rand.NewPCG(1, 2)))
			var refused *Refusal
			switch {
			case tc.refuse != "":
				if !errors.As(err, &refused) || !strings.Contains(refused.Reason, tc.refuse) || refused.Class != tc.class.Name {
					t.Fatalf("got %+v, %v; want a refusal saying %q", c, err, tc.refuse)
				}
			case err != nil || c.Node != tc.node:
				t.Fatalf("got %+v, %v; want node %s", c, err, tc.node)
			}
		})
	}
}

func TestABurstBetweenTwoReadsSpreadsOverTheNodesWithRoom(t *testing.T) {
	// A new node, empty, beside three at their high-water mark: the burst
	// goes to the new one until it is as busy as the others, then to all.
	nodes := []fleet.Node{serving("n1", fleet.Active, 1000, 20), serving("n2", fleet.Active, 1000, 20), serving("n3", fleet.Active, 1000, 20),
		serving("n4", fleet.Active, 0, 0)}
	s := NewSnapshot(livePool(), nodes, now)
	rng := rand.New(rand.NewPCG(7, 7))
	got := map[string]int{}
	for i := 0; i < 1200; i++ {
		c, err := s.Choose(premium, rng)
		if err != nil {
			t.Fatal(err)
		}
		got[c.Node]++
	}
	// n4 takes its first ~940 alone (until within 5 % of the others), and
	// the last few hundred spread over all four.
	if got["n4"] < 940 || got["n4"] > 1040 || got["n1"] == 0 || got["n2"] == 0 || got["n3"] == 0 {
		t.Fatalf("sessions per node: %v", got)
	}
}

func TestNearEqualNodesShareABurstAtRandom(t *testing.T) {
	var nodes []fleet.Node
	for i := 1; i <= 10; i++ {
		nodes = append(nodes, serving(fmt.Sprintf("n%d", i), fleet.Active, 600, 10))
	}
	s := NewSnapshot(livePool(), nodes, now)
	rng := rand.New(rand.NewPCG(3, 4))
	got := map[string]int{}
	for i := 0; i < 100; i++ {
		c, _ := s.Choose(viewer, rng)
		got[c.Node]++
	}
	counts := make([]int, 0, len(got))
	for _, n := range got {
		counts = append(counts, n)
	}
	if len(got) != 10 || slices.Max(counts)-slices.Min(counts) > 4 {
		t.Fatalf("a burst over ten equal nodes: %v", got)
	}
}

// BenchmarkChoose reports decisions per second and the p99 latency of one
// decision for pools of 1,000 and 10,000 nodes, plus the cost of building
// the snapshot, which the dispatcher does at most once a second per pool.
func BenchmarkChoose(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		rng := rand.New(rand.NewPCG(1, 1))
		nodes := make([]fleet.Node, size)
		for i := range nodes {
			nodes[i] = serving(fmt.Sprintf("n%d", i), fleet.Active, float64(rng.IntN(1200)), float64(rng.IntN(56)))
		}
		b.Run(fmt.Sprintf("%d nodes", size), func(b *testing.B) {
			s := NewSnapshot(livePool(), nodes, now)
			lat := make([]time.Duration, 0, 1<<16)
			n := 0
			for b.Loop() {
				// The dispatcher reads the table again every second; here
				// every 10,000 sessions, so the pool never fills.
				if n%10000 == 9999 {
					b.StopTimer()
					s = NewSnapshot(livePool(), nodes, now)
					b.StartTimer()
				}
				t0 := time.Now()
				if _, err := s.Choose(premium, rng); err != nil {
					b.Fatal(err)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(t0))
				}
				n++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
		b.Run(fmt.Sprintf("snapshot of %d nodes", size), func(b *testing.B) {
			for b.Loop() {
				NewSnapshot(livePool(), nodes, now)
			}
		})
	}
}
