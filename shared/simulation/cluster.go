package simulation

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/mediascale/mediascale/shared/pool"
)

// phase is where a simulated node is.
type phase int

const (
	launching phase = iota // from the decision until its probe passes
	shifting               // taking traffic in steps
	active                 // full weight
	draining               // no new sessions, its own leaving
	gone
)

// Removal is how a policy takes a node away, which decides how many of its
// sessions are cut.
type Removal int

const (
	// Drain stops new sessions, waits for the node's own to end, and cuts
	// those left at the pool's drain timeout (mediascale).
	Drain Removal = iota
	// Terminate cuts every session at once (EC2 Auto Scaling without a
	// lifecycle hook).
	Terminate
	// Grace cuts the sessions left after the model's pod grace period
	// (Kubernetes: SIGTERM, then SIGKILL).
	Grace
)

type node struct {
	id        int
	phase     phase
	execution int
	// inAt is when the node's probe passes and its first step begins.
	inAt time.Duration
	// steps are the weights it takes on its way in; step is the one it
	// is at, until stepUntil.
	steps     []pool.Step
	step      int
	stepUntil time.Duration
	weight    float64
	// A draining node holds its own sessions until they end or until
	// drainUntil, when the rest are cut.
	sessions   float64
	drainUntil time.Duration
	launched   time.Duration
}

// cluster is the pool a policy runs: its nodes, its warm pool, and the
// figures it earns.
type cluster struct {
	p     pool.Pool
	m     Model
	rng   *rand.Rand
	now   time.Duration
	nodes []*node
	// warm counts parked warm nodes; filling holds when each warm node
	// on its way will be parked.
	warm    int
	filling []time.Duration
	nextID  int
	// shift is true for mediascale, which moves traffic in the pool's
	// steps; the peers' load balancers send a node its full share once
	// healthy.
	shift bool
	// full is what a node admits, unit what it carries before it counts
	// as overloaded (the demand's node unit), target the load the
	// policies aim for.
	full, unit, target float64
	// perActive is each step's average sessions per ACTIVE node (what
	// the agents publish with the Pool dimension), NaN when none.
	perActive []float64
	// demand is the sessions wanting service now.
	demand float64
	fig    figures
}

func newCluster(p pool.Pool, m Model, shift bool, full, target float64) *cluster {
	f := &cluster{p: p, m: m, rng: rand.New(rand.NewPCG(m.Seed, 0x6d656469617363)), shift: shift, full: full, target: target, unit: p.Alarms.ScaleOut.ConnectionsPerNode}
	f.warm = p.Capacity.WarmPool
	return f
}

// capacity counts the nodes a controller counts as the pool's: serving
// and on their way in.
func (f *cluster) capacity() (total, ready int) {
	for _, n := range f.nodes {
		switch n.phase {
		case launching, shifting:
			total++
		case active:
			total++
			ready++
		}
	}
	return total, ready
}

// launch starts n nodes for one execution, from the warm pool first, and
// refills the warm pool behind them.
func (f *cluster) launch(n, execution int) {
	for i := 0; i < n; i++ {
		lead := f.m.coldLead(f.p)
		if f.warm > 0 {
			f.warm--
			lead = f.m.warmLead(f.p)
			f.filling = append(f.filling, f.now+f.m.coldLead(f.p))
			// The refill runs while it is launched, deployed and probed.
			f.fig.nodeSeconds += f.m.coldLead(f.p).Seconds()
		}
		for f.m.CapacityFailureRate > 0 && f.rng.Float64() < f.m.CapacityFailureRate {
			lead += f.m.CapacityRetry.D()
		}
		steps := []pool.Step{{Percent: 100}}
		if f.shift {
			steps = f.p.ShiftSteps()
		} else {
			lead += f.m.HealthCheck.D()
		}
		f.nextID++
		f.nodes = append(f.nodes, &node{id: f.nextID, execution: execution, inAt: f.now + lead, steps: steps, launched: f.now})
		f.fig.launches++
	}
}

// remove takes n serving nodes away, newest on their way in first, then
// the ACTIVE ones.
func (f *cluster) remove(n int, how Removal, execution int) {
	for i := len(f.nodes) - 1; i >= 0 && n > 0; i-- {
		if x := f.nodes[i]; x.phase == launching {
			x.phase = gone
			f.fig.nodeSeconds += (f.now - x.launched).Seconds()
			n--
		}
	}
	perWeight := f.perWeight()
	for _, x := range f.nodes {
		if n == 0 {
			break
		}
		if x.phase != active && x.phase != shifting {
			continue
		}
		n--
		x.execution = execution
		x.sessions = perWeight * x.weight
		x.weight = 0
		x.phase = draining
		switch how {
		case Terminate:
			x.drainUntil = f.now
		case Grace:
			x.drainUntil = f.now + f.m.PodGrace.D()
		default:
			x.drainUntil = f.now + f.p.Drain.Timeout.D()
		}
	}
	f.compact()
}

// resize moves a peer's pool from current to desired nodes as one
// scaling action.
func (f *cluster) resize(current, desired int, how Removal) {
	switch {
	case desired > current:
		f.launch(desired-current, 0)
	case desired < current:
		f.remove(current-desired, how, 0)
	default:
		return
	}
	f.fig.executions++
}

// restore puts an execution's draining nodes back into service at full
// weight with the sessions they still hold, as a cancelled drain does.
func (f *cluster) restore(execution int) {
	for _, n := range f.nodes {
		if n.execution == execution && n.phase == draining {
			n.phase, n.weight, n.sessions = active, 1, 0
		}
	}
}

// busy reports whether an execution still has a node on its way in or
// draining.
func (f *cluster) busy(execution int) bool {
	for _, n := range f.nodes {
		if n.execution == execution && (n.phase == launching || n.phase == shifting || n.phase == draining) {
			return true
		}
	}
	return false
}

// weight is the pool's serving weight in node units.
func (f *cluster) weight() float64 {
	w := 0.0
	for _, n := range f.nodes {
		w += n.weight
	}
	return w
}

// held is the sessions draining nodes still carry.
func (f *cluster) held() float64 {
	h := 0.0
	for _, n := range f.nodes {
		if n.phase == draining {
			h += n.sessions
		}
	}
	return h
}

// perWeight is the sessions on one unit of weight: demand not held by
// draining nodes, spread by weight as weighted records and target groups
// spread new sessions, up to each node's full capacity.
func (f *cluster) perWeight() float64 {
	w := f.weight()
	if w == 0 {
		return 0
	}
	return math.Min(math.Max(f.demand-f.held(), 0)/w, f.full)
}

// advance moves every node to time t: probes pass, steps bake, drains
// end. dt is the time since the last step.
func (f *cluster) advance(t, dt time.Duration) {
	f.now = t
	for len(f.filling) > 0 && f.filling[0] <= t {
		f.filling = f.filling[1:]
		f.warm++
	}
	decay := math.Exp(-dt.Seconds() / f.m.SessionLifetime.D().Seconds())
	threshold := float64(f.p.Drain.ConnectionThreshold)
	for _, n := range f.nodes {
		switch n.phase {
		case launching:
			if t >= n.inAt {
				n.phase = shifting
				f.enterStep(n, 0, t)
			}
		case shifting:
			for n.phase == shifting && t >= n.stepUntil {
				f.enterStep(n, n.step+1, t)
			}
		case draining:
			n.sessions *= decay
			if n.sessions <= threshold || t >= n.drainUntil {
				f.fig.cut += n.sessions
				n.phase = gone
				f.fig.nodeSeconds += (t - n.launched).Seconds()
			}
		}
	}
	f.compact()
}

// enterStep moves a node to step i of its way in: the last step is full
// weight and ACTIVE at once, as the workflow's last shift is; the others
// bake for their time, cut to the pool's pressure bake while its nodes
// carry more than the scale-out threshold (traffic.Pressure).
func (f *cluster) enterStep(n *node, i int, t time.Duration) {
	n.step = i
	n.weight = float64(n.steps[i].Percent) / 100
	if i == len(n.steps)-1 {
		n.phase, n.weight = active, 1
		return
	}
	bake := n.steps[i].Bake.D()
	if f.perWeight() > f.unit {
		bake = min(bake, f.p.Traffic.PressureBakeOrDefault())
	}
	n.stepUntil = t + bake
}

func (f *cluster) compact() {
	kept := f.nodes[:0]
	for _, n := range f.nodes {
		if n.phase != gone {
			kept = append(kept, n)
		}
	}
	f.nodes = kept
}
