package capacity

import (
	"fmt"
	"sort"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Warm is a pool's warm pool and the upkeep it needs. A pool with
// capacity.warmPool N keeps N stopped, already deployed instances of its
// current revision, on top of its serving capacity: a stopped instance
// costs only its volume, and starts in seconds where a new one takes
// minutes. EC2 Auto Scaling sizes its warm pools from the group's maximum
// by default; mediascale keeps the configured number, so an SRE knows
// exactly what stands by.
//
// Upkeep is make-before-break: a stale node (built from another revision)
// is never started, and is retired only once enough current nodes are
// parked to keep N ready without it.
type Warm struct {
	Want int `json:"want"`
	// Ready nodes are WARM at the pool's current revision.
	Ready int `json:"ready"`
	// Filling nodes are on their way into the warm pool.
	Filling int `json:"filling"`
	// Stale nodes are WARM at another revision.
	Stale int `json:"stale"`
	// Fill is how many new nodes to launch and park; Retire how many
	// warm nodes to terminate.
	Fill   int `json:"fill"`
	Retire int `json:"retire"`
}

// Needed reports whether the warm pool needs upkeep.
func (w Warm) Needed() bool { return w.Fill > 0 || w.Retire > 0 }

func (w Warm) String() string {
	s := fmt.Sprintf("warm pool %d of %d ready", w.Ready, w.Want)
	if w.Filling > 0 {
		s += fmt.Sprintf(", %d filling", w.Filling)
	}
	if w.Stale > 0 {
		s += fmt.Sprintf(", %d stale", w.Stale)
	}
	switch {
	case w.Fill > 0 && w.Retire > 0:
		s += fmt.Sprintf(": filling %d, retiring %d", w.Fill, w.Retire)
	case w.Fill > 0:
		s += fmt.Sprintf(": filling %d", w.Fill)
	case w.Retire > 0:
		s += fmt.Sprintf(": retiring %d", w.Retire)
	}
	return s
}

// warmNodes are a pool's warm nodes, sorted.
type warmNodes struct {
	// ready is oldest first, the order a scale-out starts them in, so
	// none stands by forever.
	ready   []fleet.Node
	stale   []fleet.Node
	filling []fleet.Node
	want    int
}

func sortWarm(p pool.Pool, nodes []fleet.Node) warmNodes {
	w := warmNodes{want: p.Capacity.WarmPool}
	rev := p.Revision()
	for _, n := range nodes {
		switch {
		case n.State == fleet.Warm && n.Revision == rev:
			w.ready = append(w.ready, n)
		case n.State == fleet.Warm:
			w.stale = append(w.stale, n)
		case n.Goal == events.GoalWarm && n.State.Serving():
			w.filling = append(w.filling, n)
		}
	}
	sort.Slice(w.ready, func(i, j int) bool { return w.ready[i].CreatedAt.Before(w.ready[j].CreatedAt) })
	return w
}

// upkeep is the warm pool's work once a scale-out has started the first
// used ready nodes: how many to fill, and which warm nodes to retire
// (stale ones first, then the newest surplus).
func (w warmNodes) upkeep(used int) (Warm, []fleet.Node) {
	left := w.ready[used:]
	out := Warm{Want: w.want, Ready: len(left), Filling: len(w.filling), Stale: len(w.stale)}
	out.Fill = max(0, w.want-len(left)-len(w.filling))
	surplus := len(left) + len(w.stale) - w.want
	var retire []fleet.Node
	for _, n := range w.stale {
		if len(retire) < surplus {
			retire = append(retire, n)
		}
	}
	for i := len(left) - 1; i >= 0 && len(retire) < surplus; i-- {
		retire = append(retire, left[i])
	}
	out.Retire = len(retire)
	return out, retire
}

// WarmUpkeep is the warm pool's state and work as nodes stand now, for a
// warm pool of want nodes (WarmWant).
func WarmUpkeep(p pool.Pool, nodes []fleet.Node, want int) Warm {
	w := sortWarm(p, nodes)
	w.want = want
	u, _ := w.upkeep(0)
	return u
}

// WarmReady counts the pool's parked nodes of its current revision.
func WarmReady(p pool.Pool, nodes []fleet.Node) int { return len(sortWarm(p, nodes).ready) }

// WarmWant is the warm pool a pool keeps: its configured warmPool, and
// ahead of a rise that the forecast or a show will call for (ahead nodes
// one lead time after now, while current serve or are on their way) as
// much more as the rise needs beyond the running nodes, so the floor's
// nodes start in seconds when it rises; never past max with the serving
// ones. Once the rise is past, ahead falls and the surplus is retired.
func WarmWant(p pool.Pool, ahead, current int) int {
	return max(p.Capacity.WarmPool, min(ahead, p.Capacity.Max)-current)
}
