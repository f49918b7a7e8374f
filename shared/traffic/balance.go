package traffic

import (
	"math"
	"time"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Load-aware weights for Route53 pools (README.md, "Load-aware DNS
// weights"): clients that only speak DNS get new sessions in proportion
// to each ACTIVE node's headroom, so a node that just joined takes more of
// them than one at its high-water mark.
const (
	// MinBalancedWeight is the least a healthy ACTIVE node is given: a
	// full node keeps a trickle, never 0, which would take it out.
	MinBalancedWeight = 10
	// MaxBalancedWeight bounds an empty node among busy ones.
	MaxBalancedWeight = 250
	// MaxWeightStep is how far one run moves a weight: DNS caches hold
	// the old answer for a TTL, and a node must not swing from idle to
	// swamped between two readings.
	MaxWeightStep = 25
	// minWeightChange is the least change worth a Route53 write.
	minWeightChange = 5
	// leastHeadroom keeps a full node's share above zero.
	leastHeadroom = 0.05
)

// Balance computes new record weights for the pool's ACTIVE nodes from
// their agents' last reports: each node's headroom (100 % minus its
// utilization, at least 5 %) over the average headroom, times
// FullWeight, so the average ACTIVE node keeps FullWeight and a node
// shifting in keeps its step's share of it (its weight is not touched).
// A weight moves at most MaxWeightStep a run, stays within
// [MinBalancedWeight, MaxBalancedWeight], and is only returned when it
// moves by minWeightChange or more. Nodes without a fresh, healthy
// heartbeat or without a record keep theirs.
func Balance(p pool.Pool, nodes []fleet.Node, current map[string]int, now time.Time) map[string]int {
	headroom := map[string]float64{}
	sum := 0.0
	for _, n := range nodes {
		hb := n.Heartbeat
		if _, ok := current[n.ID]; !ok || n.State != fleet.Active || !n.Serving() || !hb.Fresh(now, p.HeartbeatMaxAge()) || !hb.Healthy {
			continue
		}
		h := math.Max(1-capacity.Utilization(p, hb.Load, 1)/100, leastHeadroom)
		headroom[n.ID] = h
		sum += h
	}
	if len(headroom) < 2 {
		return nil
	}
	mean := sum / float64(len(headroom))
	out := map[string]int{}
	for id, h := range headroom {
		target := float64(FullWeight) * h / mean
		cur := float64(current[id])
		next := math.Min(math.Max(target, cur-MaxWeightStep), cur+MaxWeightStep)
		w := int(math.Round(math.Min(math.Max(next, MinBalancedWeight), MaxBalancedWeight)))
		if d := w - current[id]; d >= minWeightChange || d <= -minWeightChange {
			out[id] = w
		}
	}
	return out
}
