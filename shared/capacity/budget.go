package capacity

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Claim is one pool's part in sharing the environment's budget: what it
// runs now and what its controller asks for.
type Claim struct {
	Pool     string
	Priority int
	// VCPUs is what one of its nodes may run (pool.VCPUsPerNode).
	VCPUs int
	Min   int
	// Holding counts its nodes serving or on their way in; Wants is the
	// size its controller recommends.
	Holding, Wants int
	Preemptible    bool
}

// ClaimOf is a pool's claim from its recommendation.
func ClaimOf(p pool.Pool, r Recommendation) Claim {
	return Claim{Pool: p.Name, Priority: p.Priority, VCPUs: p.VCPUsPerNode(), Min: p.Capacity.Min,
		Holding: r.Current, Wants: r.Desired, Preemptible: p.Capacity.Preemptible}
}

// LastReported is the nodes the load its serving nodes last reported calls
// for, counting every heartbeat of the last `within`, fresh or not, healthy
// or not. The budget reads it for a pool served first: a node whose agent
// missed a few reports (its host or the table slow under a crowd) has not
// gone idle, and the room its load needs must not go to a pool of lower
// priority meanwhile. Recommend, which acts on the pool itself, reads
// fresh and healthy heartbeats only.
func LastReported(p pool.Pool, nodes []fleet.Node, now time.Time, within time.Duration) int {
	var load fleet.Load
	for _, n := range nodes {
		if n.Serving() && n.Heartbeat.Fresh(now, within) {
			load = load.Add(n.Heartbeat.Load)
		}
	}
	return min(desiredFor(load, Targets(p)), p.Capacity.Max)
}

// Share is the most nodes a pool may have under the budget, and why, when
// that is less than it wants.
type Share struct {
	Ceiling int
	Reason  string
}

// Allocate shares the budget among the pools by priority, the highest
// first (ties by name). Every pool keeps what it runs; each in turn gets
// what it wants more of from what is left. A pool still short then takes
// nodes from preemptible pools of lower priority, the lowest first, never
// below their min. No other pool ever loses a node to another's growth.
func Allocate(b pool.Budget, claims []Claim) map[string]Share {
	order := slices.Clone(claims)
	slices.SortFunc(order, func(x, y Claim) int {
		return cmp.Or(cmp.Compare(y.Priority, x.Priority), cmp.Compare(x.Pool, y.Pool))
	})
	var usedNodes, usedVCPUs int
	for _, c := range order {
		usedNodes += c.Holding
		usedVCPUs += c.Holding * c.VCPUs
	}
	free := func(vcpus int) int {
		n := math.MaxInt
		if b.Nodes > 0 {
			n = b.Nodes - usedNodes
		}
		if b.VCPUs > 0 && vcpus > 0 {
			n = min(n, (b.VCPUs-usedVCPUs)/vcpus)
		}
		return max(n, 0)
	}
	// given counts the nodes each preemptible pool gave up.
	given := map[string]int{}
	taker := map[string]string{}
	shares := map[string]Share{}
	for i, c := range order {
		holding := c.Holding - given[c.Pool]
		extra := c.Wants - holding
		if extra <= 0 {
			shares[c.Pool] = Share{Ceiling: max(holding, c.Wants)}
			if given[c.Pool] > 0 {
				shares[c.Pool] = Share{Ceiling: holding, Reason: preempted(given[c.Pool], taker[c.Pool])}
			}
			continue
		}
		grant := min(extra, free(c.VCPUs))
		// Still short: the lowest preemptible pools give nodes, one at a
		// time, down to their min. Nodes given that did not add up to a
		// node of this pool's size are handed back.
		var pending []Claim
		for v := len(order) - 1; v > i && grant < extra; v-- {
			victim := order[v]
			if !victim.Preemptible || victim.Priority >= c.Priority {
				continue
			}
			for grant < extra && victim.Holding-given[victim.Pool] > victim.Min {
				given[victim.Pool]++
				taker[victim.Pool] = c.Pool
				usedNodes--
				usedVCPUs -= victim.VCPUs
				pending = append(pending, victim)
				if g := min(extra, free(c.VCPUs)); g > grant {
					grant, pending = g, nil
				}
			}
		}
		for _, victim := range pending {
			given[victim.Pool]--
			usedNodes++
			usedVCPUs += victim.VCPUs
		}
		usedNodes += grant
		usedVCPUs += grant * c.VCPUs
		s := Share{Ceiling: holding + grant}
		if grant < extra {
			s.Reason = fmt.Sprintf("the environment's budget of %s leaves it %d of the %d more nodes it wants (pools of higher priority served first)",
				b, grant, extra)
		}
		if given[c.Pool] > 0 {
			s = Share{Ceiling: holding, Reason: preempted(given[c.Pool], taker[c.Pool])}
		}
		shares[c.Pool] = s
	}
	return shares
}

func preempted(n int, to string) string {
	return fmt.Sprintf("preempted: gives %d node(s) to pool %s, of higher priority, which the environment's budget holds back", n, to)
}

// Within applies a pool's share to its recommendation: growth past the
// ceiling is cut to it (a hold when nothing is left), and a preempted pool
// shrinks to it. The reason says which.
func Within(r Recommendation, s Share) Recommendation {
	if r.Desired <= s.Ceiling {
		return r
	}
	switch {
	case s.Ceiling > r.Current:
		r.Direction, r.Desired = Grow, s.Ceiling
	case s.Ceiling == r.Current:
		r.Direction, r.Desired = Hold, r.Current
	default:
		r.Direction, r.Desired = Shrink, s.Ceiling
	}
	r.Change = r.Desired - r.Current
	r.Reason += "; " + s.Reason
	return r
}
