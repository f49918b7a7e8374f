package traffic

import (
	"fmt"
	"math"
	"time"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Saturated reports whether the pool's serving nodes are at their
// ceiling: the entry dispatcher refused sessions in the minute the guard
// read, or every ACTIVE node's fresh, healthy heartbeat shows it at or
// above its scale-out threshold on some metric. Then the sessions waiting
// are worth more than a careful ramp: a new node that passed its probe
// takes its full share at once, and the guard still judges it after one
// pressure bake. An ACTIVE node whose load is not known leaves the pool
// unsaturated, as does a pool without an ACTIVE node: the steps stand
// unless the load says otherwise.
func Saturated(p pool.Pool, nodes []fleet.Node, refused float64, now time.Time) (bool, string) {
	if refused > 0 {
		return true, fmt.Sprintf("the entry dispatcher refused %.0f session(s) of pool %s in the last minute", refused, p.Name)
	}
	seen, least := 0, math.Inf(1)
	for _, n := range nodes {
		if n.State != fleet.Active {
			continue
		}
		hb := n.Heartbeat
		if !hb.Fresh(now, p.HeartbeatMaxAge()) || !hb.Healthy {
			return false, ""
		}
		u := capacity.Utilization(p, hb.Load, 1)
		if u < 100 {
			return false, ""
		}
		seen++
		least = math.Min(least, u)
	}
	if seen == 0 {
		return false, ""
	}
	return true, fmt.Sprintf("all %d ACTIVE node(s) of pool %s at or above their scale-out thresholds (the least loaded at %.0f %%)", seen, p.Name, least)
}
