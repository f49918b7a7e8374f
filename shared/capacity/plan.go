// Package capacity decides how many nodes a pool gains or loses and which
// ones. Its functions are pure: the pool's configuration and its current
// nodes in, a plan with a reason for every choice out.
package capacity

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// ScaleOut plans a scale-out of p given its current nodes. requested is an
// exact number of nodes asked for by an operator, or zero for the pool's
// configured step. newID names each new node.
//
// Rules: never above max; stopped warm-pool nodes are used before any new
// launch, because they are already deployed and start in seconds; new
// nodes go to the zone with the fewest serving nodes, ties broken by the
// configured order; every node may use every instance type, most preferred
// first, and provisioning falls back along that list.
func ScaleOut(req events.ScaleRequest, p pool.Pool, nodes []fleet.Node, newID func() string) events.Plan {
	plan := events.Plan{Pool: p.Name, Direction: events.DirectionOut, Execution: req.Execution, Nodes: []events.NodeTask{}}
	perAZ := map[string]int{}
	var warm []fleet.Node
	for _, n := range nodes {
		switch {
		case n.State.Serving():
			plan.Current++
			perAZ[n.AZ]++
		case n.State == fleet.Warm:
			warm = append(warm, n)
		}
	}
	step, why := p.Capacity.ScaleOutStep, fmt.Sprintf("scale-out step of %d", p.Capacity.ScaleOutStep)
	switch {
	case req.Count > 0:
		step, why = req.Count, fmt.Sprintf("%d requested by an operator", req.Count)
	case req.Desired > 0:
		step, why = req.Desired-plan.Current, fmt.Sprintf("the controller wants %d nodes", req.Desired)
		if step <= 0 {
			plan.Desired = plan.Current
			plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s and %d are serving or in flight: nothing to add", why, plan.Current))
			return plan
		}
	}
	plan.Desired = min(p.Capacity.Max, plan.Current+step)
	switch {
	case plan.Current >= p.Capacity.Max:
		plan.Desired = plan.Current
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("pool is at its max of %d nodes with %d serving: nothing to add", p.Capacity.Max, plan.Current))
		return plan
	case plan.Current+step > p.Capacity.Max:
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s capped at max %d: adding %d to %d serving", why, p.Capacity.Max, plan.Desired-plan.Current, plan.Current))
	default:
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s: adding %d to %d serving", why, step, plan.Current))
	}

	// Warm nodes first, oldest first so none idles forever.
	sort.Slice(warm, func(i, j int) bool { return warm[i].CreatedAt.Before(warm[j].CreatedAt) })
	add := plan.Desired - plan.Current
	for _, n := range warm {
		if add == 0 {
			break
		}
		plan.Nodes = append(plan.Nodes, events.NodeTask{
			Pool: p.Name, Node: n.ID, Execution: req.Execution, AZ: n.AZ, Subnet: n.Subnet,
			InstanceTypes: []string{n.InstanceType}, Warm: true, InstanceID: n.InstanceID,
		})
		perAZ[n.AZ]++
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: warm-pool instance %s in %s started first, already deployed", n.ID, n.InstanceID, n.AZ))
		add--
	}
	for ; add > 0; add-- {
		pl := leastLoaded(p.Placement, perAZ)
		id := newID()
		plan.Nodes = append(plan.Nodes, events.NodeTask{
			Pool: p.Name, Node: id, Execution: req.Execution, AZ: pl.AZ, Subnet: pl.Subnet,
			InstanceTypes: append([]string(nil), p.InstanceTypes...),
		})
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: new in %s (%d serving there, fewest), types in preference order %s",
			id, pl.AZ, perAZ[pl.AZ], strings.Join(p.InstanceTypes, ", ")))
		perAZ[pl.AZ]++
	}
	return plan
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
