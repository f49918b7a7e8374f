package capacity

import (
	"fmt"
	"sort"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// ScaleIn plans a scale-in of p: which serving nodes to drain, and why.
// connections maps a node to its live session count; a node without a
// reading is never chosen, because scale-in never acts on missing data.
//
// Rules: never below min; at most the pool's scale-in step (or an
// operator's count) per execution; only ACTIVE nodes are candidates, so a
// node still SHIFTING or already DRAINING is never chosen; least
// connections first, so the fewest sessions are disturbed, then newest
// first, so long-proven nodes stay.
func ScaleIn(req events.ScaleRequest, p pool.Pool, nodes []fleet.Node, connections map[string]float64) events.Plan {
	plan := events.Plan{Pool: p.Name, Direction: events.DirectionIn, Execution: req.Execution, Nodes: []events.NodeTask{}}
	var candidates []fleet.Node
	for _, n := range nodes {
		if !n.Serving() {
			continue
		}
		plan.Current++
		if n.State != fleet.Active {
			plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s is %s: not a candidate", n.ID, n.State))
			continue
		}
		if _, ok := connections[n.ID]; !ok {
			plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s has no connection reading: not a candidate (missing data never scales in)", n.ID))
			continue
		}
		candidates = append(candidates, n)
	}
	step, why := p.Capacity.ScaleInStep, fmt.Sprintf("scale-in step of %d", p.Capacity.ScaleInStep)
	if req.Count > 0 {
		step, why = req.Count, fmt.Sprintf("%d requested by an operator", req.Count)
	}
	room := plan.Current - p.Capacity.Min
	take := min(step, room, len(candidates))
	plan.Desired = plan.Current - max(take, 0)
	switch {
	case room <= 0:
		plan.Desired = plan.Current
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("pool is at its min of %d nodes with %d serving: nothing to remove", p.Capacity.Min, plan.Current))
		return plan
	case take <= 0:
		plan.Reasons = append(plan.Reasons, "no node can be removed now")
		return plan
	case take < step:
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s limited to %d by min %d and %d candidates: %d serving", why, take, p.Capacity.Min, len(candidates), plan.Current))
	default:
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s: removing %d of %d serving", why, take, plan.Current))
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		ci, cj := connections[candidates[i].ID], connections[candidates[j].ID]
		if ci != cj {
			return ci < cj
		}
		return candidates[i].CreatedAt.After(candidates[j].CreatedAt)
	})
	for _, n := range candidates[:take] {
		plan.Nodes = append(plan.Nodes, events.NodeTask{
			Pool: p.Name, Node: n.ID, Execution: req.Execution, AZ: n.AZ, Subnet: n.Subnet,
			InstanceTypes: []string{n.InstanceType}, InstanceID: n.InstanceID,
		})
		plan.Reasons = append(plan.Reasons, fmt.Sprintf("node %s: %.0f connections, created %s", n.ID, connections[n.ID], n.CreatedAt.Format("2006-01-02T15:04:05Z")))
	}
	return plan
}
