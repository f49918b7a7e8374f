// Package capacity decides how many nodes a pool gains or loses and which
// ones. Its functions are pure: the pool's configuration and its current
// nodes in, a plan with a reason for every choice out.
package capacity

import (
	"fmt"
	"strings"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// ScaleOut plans a scale-out of p given its current nodes. requested is an
// exact number of nodes asked for by an operator, or zero for the pool's
// configured step. newID names each new node.
//
// Rules: never above max; stopped warm-pool nodes of the pool's current
// revision are used before any new launch, because they are already
// deployed and start in seconds; new nodes go to the zone with the fewest
// serving nodes, ties broken by the configured order; every node may use
// every instance type, most preferred first, and provisioning falls back
// along that list. Every scale-out also keeps the warm pool: it fills what
// the warm pool lacks (after the nodes it starts) and retires stale or
// surplus warm nodes (see Warm). Serving nodes come first in the plan, so
// the Map starts them first.
func ScaleOut(req events.ScaleRequest, p pool.Pool, nodes []fleet.Node, newID func() string) events.Plan {
	plan := events.Plan{Pool: p.Name, Direction: events.DirectionOut, Execution: req.Execution, Nodes: []events.NodeTask{}}
	perAZ := map[string]int{}
	for _, n := range nodes {
		if n.Serving() {
			plan.Current++
			perAZ[n.AZ]++
		}
	}
	warm := sortWarm(p, nodes)
	if req.WarmWant > warm.want {
		warm.want = req.WarmWant
	}
	add := servingToAdd(req, p, &plan)
	plan.Desired = plan.Current + add

	// Warm nodes first, oldest first so none idles forever.
	used := min(add, len(warm.ready))
	for _, n := range warm.ready[:used] {
		plan.Nodes = append(plan.Nodes, events.NodeTask{
			Pool: p.Name, Node: n.ID, Execution: req.Execution, AZ: n.AZ, Subnet: n.Subnet,
			InstanceTypes: []string{n.InstanceType}, Warm: true, InstanceID: n.InstanceID, Goal: events.GoalServe,
		})
		perAZ[n.AZ]++
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: warm-pool instance %s in %s started first, already deployed", n.ID, n.InstanceID, n.AZ))
	}
	for i := used; i < add; i++ {
		plan.Nodes = append(plan.Nodes, newTask(req, p, newID(), events.GoalServe, perAZ))
		t := plan.Nodes[len(plan.Nodes)-1]
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: new in %s (%d serving there, fewest), types in preference order %s",
			t.Node, t.AZ, perAZ[t.AZ], strings.Join(p.InstanceTypes, ", ")))
		perAZ[t.AZ]++
	}

	w, retire := warm.upkeep(used)
	if w.Want == 0 && w.Stale == 0 && w.Ready == 0 {
		return plan
	}
	plan.Reasons = append(plan.Reasons, w.String())
	// Warm nodes spread over the zones like serving ones, so a zone's
	// trouble never takes the whole warm pool; the ones still on their way
	// in count in their zones too.
	warmAZ := map[string]int{}
	for _, n := range append(warm.ready[used:len(warm.ready):len(warm.ready)], warm.filling...) {
		warmAZ[n.AZ]++
	}
	for i := 0; i < w.Fill; i++ {
		plan.Nodes = append(plan.Nodes, newTask(req, p, newID(), events.GoalWarm, warmAZ))
		t := plan.Nodes[len(plan.Nodes)-1]
		warmAZ[t.AZ]++
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: new in %s for the warm pool: launched, deployed and probed, then stopped", t.Node, t.AZ))
	}
	rev := p.Revision()
	for _, n := range retire {
		plan.Retire = append(plan.Retire, events.NodeTask{
			Pool: p.Name, Node: n.ID, Execution: req.Execution, AZ: n.AZ, Subnet: n.Subnet,
			InstanceTypes: []string{n.InstanceType}, InstanceID: n.InstanceID, Goal: events.GoalRetire,
		})
		why := "the warm pool has more than it wants"
		if n.Revision != rev {
			why = fmt.Sprintf("built from revision %s, the pool is now at %s", n.Revision, rev)
		}
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: warm instance %s retired: %s", n.ID, n.InstanceID, why))
	}
	return plan
}

// servingToAdd is how many serving nodes a scale-out adds, with its reason
// in the plan: an operator's count, the controller's desired capacity, or
// the configured step; none for warm-pool upkeep alone; never above max.
func servingToAdd(req events.ScaleRequest, p pool.Pool, plan *events.Plan) int {
	step, why := p.Capacity.ScaleOutStep, fmt.Sprintf("scale-out step of %d", p.Capacity.ScaleOutStep)
	switch {
	case req.WarmOnly:
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("warm-pool upkeep only: %d serving or in flight stay as they are", plan.Current))
		return 0
	case req.Count > 0:
		step, why = req.Count, fmt.Sprintf("%d requested by an operator", req.Count)
	case req.Desired > 0:
		step, why = req.Desired-plan.Current, fmt.Sprintf("the controller wants %d nodes", req.Desired)
		if step <= 0 {
			plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s and %d are serving or in flight: nothing to add", why, plan.Current))
			return 0
		}
	}
	switch {
	case plan.Current >= p.Capacity.Max:
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("pool is at its max of %d nodes with %d serving: nothing to add", p.Capacity.Max, plan.Current))
		return 0
	case plan.Current+step > p.Capacity.Max:
		add := p.Capacity.Max - plan.Current
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s capped at max %d: adding %d to %d serving", why, p.Capacity.Max, add, plan.Current))
		return add
	}
	plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s: adding %d to %d serving", why, step, plan.Current))
	return step
}

// newTask is a node to launch, in the zone with the fewest nodes in count.
func newTask(req events.ScaleRequest, p pool.Pool, id, goal string, count map[string]int) events.NodeTask {
	pl := leastLoaded(p.Placement, count)
	return events.NodeTask{
		Pool: p.Name, Node: id, Execution: req.Execution, AZ: pl.AZ, Subnet: pl.Subnet,
		InstanceTypes: append([]string(nil), p.InstanceTypes...), Goal: goal,
	}
}

// leastLoaded returns the placement whose zone has the fewest nodes; the
// first configured wins a tie.
func leastLoaded(placements []pool.Placement, perAZ map[string]int) pool.Placement {
	best := placements[0]
	for _, pl := range placements[1:] {
		if perAZ[pl.AZ] < perAZ[best.AZ] {
			best = pl
		}
	}
	return best
}
