package capacity

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

func livePool(t *testing.T) pool.Pool {
	t.Helper()
	f, err := pool.LoadFile("../../infra/config/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.Find("live-rtmp-use1") // min 1, max 6, step 2, zones 1a and 1b
	return p
}

func ids() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("new-%d", n) }
}

func node(id string, st fleet.State, az string) fleet.Node {
	return fleet.Node{ID: id, State: st, AZ: az, CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

// warmNode is a parked warm-pool node of p's current revision.
func warmNode(p pool.Pool, id string, at time.Time) fleet.Node {
	n := node(id, fleet.Warm, "us-east-1b")
	n.InstanceID, n.InstanceType, n.CreatedAt, n.Goal, n.Revision = "i-"+id, "c7g.xlarge", at, events.GoalWarm, p.Revision()
	return n
}

func TestScaleOut(t *testing.T) {
	p := livePool(t)
	p.Capacity.WarmPool = 0 // TestWarmPoolUpkeep covers the refill.
	warm := func(id string, at time.Time) fleet.Node { return warmNode(p, id, at) }
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		count   int
		nodes   []fleet.Node
		current int
		desired int
		planned []string // node ids, "new-N" for launches
		azs     []string
		reason  string
	}{
		{"an empty pool adds its step, spread over zones", 0, nil, 0, 2,
			[]string{"new-1", "new-2"}, []string{"us-east-1a", "us-east-1b"}, "scale-out step of 2: adding 2 to 0 serving"},
		{"new nodes go to the zone with fewer nodes", 0,
			[]fleet.Node{node("a", fleet.Active, "us-east-1a"), node("b", fleet.Active, "us-east-1a")}, 2, 4,
			[]string{"new-1", "new-2"}, []string{"us-east-1b", "us-east-1b"}, "adding 2 to 2 serving"},
		{"the step is capped at max", 0,
			[]fleet.Node{node("a", fleet.Active, "us-east-1a"), node("b", fleet.Active, "us-east-1b"), node("c", fleet.Active, "us-east-1a"),
				node("d", fleet.Active, "us-east-1b"), node("e", fleet.Shifting, "us-east-1a")}, 5, 6,
			[]string{"new-1"}, []string{"us-east-1b"}, "capped at max 6: adding 1 to 5 serving"},
		{"a pool at max adds nothing", 0,
			[]fleet.Node{node("a", fleet.Active, "us-east-1a"), node("b", fleet.Active, "us-east-1b"), node("c", fleet.Active, "us-east-1a"),
				node("d", fleet.Active, "us-east-1b"), node("e", fleet.Active, "us-east-1a"), node("f", fleet.Pending, "us-east-1b")}, 6, 6,
			nil, nil, "at its max of 6 nodes"},
		{"draining, failed and terminated nodes are not capacity", 0,
			[]fleet.Node{node("a", fleet.Draining, "us-east-1a"), node("b", fleet.Failed, "us-east-1a"), node("c", fleet.Terminated, "us-east-1a"),
				node("d", fleet.RollingBack, "us-east-1a")}, 0, 2,
			[]string{"new-1", "new-2"}, []string{"us-east-1a", "us-east-1b"}, "adding 2 to 0 serving"},
		{"warm-pool nodes are started before launching, oldest first", 0,
			[]fleet.Node{warm("w2", t0.Add(time.Hour)), warm("w1", t0), node("a", fleet.Active, "us-east-1a")}, 1, 3,
			[]string{"w1", "w2"}, []string{"us-east-1b", "us-east-1b"}, "warm-pool instance i-w1 in us-east-1b started first"},
		{"an operator's count replaces the step", 3, nil, 0, 3,
			[]string{"new-1", "new-2", "new-3"}, []string{"us-east-1a", "us-east-1b", "us-east-1a"}, "3 requested by an operator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := ScaleOut(events.ScaleRequest{Pool: p.Name, Execution: "exec-1", Count: tc.count}, p, tc.nodes, ids())
			if plan.Current != tc.current || plan.Desired != tc.desired {
				t.Fatalf("current=%d desired=%d, want %d and %d", plan.Current, plan.Desired, tc.current, tc.desired)
			}
			if len(plan.Nodes) != len(tc.planned) {
				t.Fatalf("planned %d nodes, want %d: %+v", len(plan.Nodes), len(tc.planned), plan.Nodes)
			}
			for i, n := range plan.Nodes {
				if n.Node != tc.planned[i] || n.AZ != tc.azs[i] || n.Execution != "exec-1" || n.Pool != p.Name {
					t.Fatalf("node %d = %+v, want %s in %s", i, n, tc.planned[i], tc.azs[i])
				}
				if !n.Warm && strings.Join(n.InstanceTypes, ",") != strings.Join(p.InstanceTypes, ",") {
					t.Fatalf("node %s types %v, want the preference list", n.Node, n.InstanceTypes)
				}
			}
			if !strings.Contains(strings.Join(plan.Reasons, "\n"), tc.reason) {
				t.Fatalf("reasons %q lack %q", plan.Reasons, tc.reason)
			}
			if len(plan.Reasons) != 1+len(plan.Nodes) && len(plan.Nodes) > 0 {
				t.Fatalf("want one reason for the count and one per node, got %q", plan.Reasons)
			}
		})
	}
}

func TestScaleOutAddsTheDifferenceToTheControllersDesired(t *testing.T) {
	p := livePool(t)
	p.Capacity.WarmPool = 0
	inFlight := []fleet.Node{node("a", fleet.Active, "us-east-1a"), node("b", fleet.Probing, "us-east-1b"), node("c", fleet.Pending, "us-east-1a")}
	cases := []struct {
		name    string
		desired int
		planned int
		reason  string
	}{
		{"nodes in flight are subtracted from what the controller wants", 5, 2, "the controller wants 5 nodes: adding 2 to 3 serving"},
		{"a decision overtaken by another plan adds nothing", 3, 0, "the controller wants 3 nodes and 3 are serving or in flight: nothing to add"},
		{"the controller's wish is capped at max", 9, 3, "capped at max 6: adding 3 to 3 serving"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := ScaleOut(events.ScaleRequest{Pool: p.Name, Execution: "exec-1", Desired: tc.desired}, p, inFlight, ids())
			if len(plan.Nodes) != tc.planned || !strings.Contains(strings.Join(plan.Reasons, "\n"), tc.reason) {
				t.Fatalf("planned %d (want %d), reasons %q (want %q)", len(plan.Nodes), tc.planned, plan.Reasons, tc.reason)
			}
		})
	}
}

func TestWarmPoolUpkeep(t *testing.T) {
	p := livePool(t) // warmPool 1, step 2
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	stale := func(id string) fleet.Node {
		n := warmNode(p, id, t0)
		n.Revision = "lt-0old:1/0000"
		return n
	}
	filling := node("f", fleet.Probing, "us-east-1a")
	filling.Goal = events.GoalWarm
	active := node("a", fleet.Active, "us-east-1a")
	cases := []struct {
		name    string
		req     events.ScaleRequest
		want    int
		nodes   []fleet.Node
		planned []string // node:goal, in plan order
		retired []string
		current int
		reason  string
	}{
		{"an empty warm pool is filled, and upkeep alone adds no serving node", events.ScaleRequest{WarmOnly: true}, 1,
			[]fleet.Node{active}, []string{"new-1:warm"}, nil, 1, "warm pool 0 of 1 ready: filling 1"},
		{"a warm node started for service is refilled in the same plan, after the serving nodes", events.ScaleRequest{}, 1,
			[]fleet.Node{active, warmNode(p, "w1", t0)}, []string{"w1:serve", "new-1:serve", "new-2:warm"}, nil, 1, "warm pool 0 of 1 ready: filling 1"},
		{"a node on its way into the warm pool is neither filled twice nor serving capacity", events.ScaleRequest{WarmOnly: true}, 1,
			[]fleet.Node{active, filling}, nil, nil, 1, "warm pool 0 of 1 ready, 1 filling"},
		{"a stale warm node is never started, and stays until its replacement is parked", events.ScaleRequest{}, 1,
			[]fleet.Node{active, stale("s1")}, []string{"new-1:serve", "new-2:serve", "new-3:warm"}, nil, 1, "warm pool 0 of 1 ready, 1 stale: filling 1"},
		{"a stale warm node is retired once a current one is parked", events.ScaleRequest{WarmOnly: true}, 1,
			[]fleet.Node{active, stale("s1"), warmNode(p, "w1", t0)}, nil, []string{"s1"}, 1, "built from revision lt-0old:1/0000"},
		{"a smaller warm pool retires its newest surplus node", events.ScaleRequest{WarmOnly: true}, 1,
			[]fleet.Node{active, warmNode(p, "w1", t0), warmNode(p, "w2", t0.Add(time.Hour))}, nil, []string{"w2"}, 1, "the warm pool has more than it wants"},
		{"a pool without a warm pool retires what is left of one", events.ScaleRequest{WarmOnly: true}, 0,
			[]fleet.Node{active, warmNode(p, "w1", t0)}, nil, []string{"w1"}, 1, "warm pool 1 of 0 ready: retiring 1"},
		{"ahead of a rise the controller's larger warm pool is filled", events.ScaleRequest{WarmOnly: true, WarmWant: 3}, 1,
			[]fleet.Node{active, warmNode(p, "w1", t0)}, []string{"new-1:warm", "new-2:warm"}, nil, 1, "warm pool 1 of 3 ready: filling 2"},
		{"after the rise the surplus the rise wanted is retired, newest first", events.ScaleRequest{WarmOnly: true}, 1,
			[]fleet.Node{active, warmNode(p, "w1", t0), warmNode(p, "w2", t0.Add(time.Hour)), warmNode(p, "w3", t0.Add(2*time.Hour))}, nil, []string{"w3", "w2"}, 1, "retiring 2"},
		{"a pool at max keeps its warm pool filled", events.ScaleRequest{}, 1,
			[]fleet.Node{node("a", fleet.Active, "us-east-1a"), node("b", fleet.Active, "us-east-1b"), node("c", fleet.Active, "us-east-1a"),
				node("d", fleet.Active, "us-east-1b"), node("e", fleet.Active, "us-east-1a"), node("g", fleet.Active, "us-east-1b")},
			[]string{"new-1:warm"}, nil, 6, "filling 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := p
			p.Capacity.WarmPool = tc.want
			req := tc.req
			req.Pool, req.Execution = p.Name, "exec-1"
			plan := ScaleOut(req, p, tc.nodes, ids())
			var planned, retired []string
			for _, n := range plan.Nodes {
				planned = append(planned, n.Node+":"+n.Goal)
			}
			for _, n := range plan.Retire {
				retired = append(retired, n.Node)
			}
			if strings.Join(planned, ",") != strings.Join(tc.planned, ",") || strings.Join(retired, ",") != strings.Join(tc.retired, ",") {
				t.Fatalf("planned %v and retired %v, want %v and %v", planned, retired, tc.planned, tc.retired)
			}
			if plan.Current != tc.current {
				t.Fatalf("current %d, want %d", plan.Current, tc.current)
			}

			if !strings.Contains(strings.Join(plan.Reasons, "\n"), tc.reason) {
				t.Fatalf("reasons %q lack %q", plan.Reasons, tc.reason)
			}
		})
	}
}

func TestWarmWant(t *testing.T) {
	p := livePool(t) // warmPool 1, max 6
	cases := []struct {
		name                 string
		ahead, current, want int
	}{
		{"with nothing coming the configured warm pool", 0, 2, 1},
		{"a rise to five from two keeps three warm", 5, 2, 3},
		{"a rise the running nodes already cover keeps the configured one", 2, 3, 1},
		{"never past max with the serving nodes", 9, 2, 4},
		{"at max the configured warm pool still stands by", 9, 6, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := WarmWant(p, tc.ahead, tc.current); got != tc.want {
				t.Fatalf("WarmWant(ahead %d, current %d) = %d, want %d", tc.ahead, tc.current, got, tc.want)
			}
		})
	}
}

func TestAWarmFillStillOnItsWayInCountsInItsZone(t *testing.T) {
	p := livePool(t) // zones us-east-1a and us-east-1b
	p.Capacity.WarmPool = 2
	filling := node("f", fleet.Probing, "us-east-1a")
	filling.Goal = events.GoalWarm
	plan := ScaleOut(events.ScaleRequest{Pool: p.Name, Execution: "exec-1", WarmOnly: true}, p,
		[]fleet.Node{node("a", fleet.Active, "us-east-1a"), filling}, ids())
	if len(plan.Nodes) != 1 || plan.Nodes[0].Goal != events.GoalWarm || plan.Nodes[0].AZ != "us-east-1b" {
		t.Fatalf("plan %+v: want one fill in us-east-1b, beside the one filling in us-east-1a", plan.Nodes)
	}
}
