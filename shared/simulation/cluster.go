package simulation

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
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
// sessions are cut and which nodes go first.
type Removal int

const (
	// Drain stops new sessions, waits for the node's own to end, and cuts
	// those left at the pool's drain timeout (mediascale). The nodes with
	// the fewest sessions go first, as the scale-in plan chooses them.
	Drain Removal = iota
	// Terminate cuts every session at once (EC2 Auto Scaling without a
	// lifecycle hook). The oldest instances go first: the default
	// termination policy's later criteria (oldest launch template, then
	// the instance closest to its next billing hour) do not tell apart
	// instances of one template billed by the second.
	Terminate
	// Grace cuts the sessions left after the model's pod grace period
	// (Kubernetes: SIGTERM, then SIGKILL). The newest pods go first, as
	// a ReplicaSet ranks pods for deletion by their ready time.
	Grace
)

type node struct {
	id        int
	phase     phase
	execution int
	// inAt is when the node's probe passes and its first step begins.
	inAt time.Duration
	// activeAt is when it became ACTIVE: EC2 Auto Scaling's instance
	// warmup counts from there.
	activeAt time.Duration
	// steps are the weights it takes on its way in; step is the one it
	// is at, until stepUntil.
	steps     []pool.Step
	step      int
	stepUntil time.Duration
	// weight is the share of a full node's traffic its shift step gives
	// it: the pool's serving capacity, BUNGEE's supply. route is its
	// record's weight in the same unit, what resolvers and load
	// balancers hand out: the step's weight, or a load-aware weight on an
	// ACTIVE node.
	weight, route float64
	// sessions are the sessions on the node; a draining node holds its
	// own until they end or until drainUntil, when the rest are cut.
	sessions   float64
	drainUntil time.Duration
	launched   time.Duration
}

// answer is one node's share of the new sessions in one resolution.
type answer struct {
	id    int
	share float64
}

// cluster is the pool a policy runs: its nodes, its warm pool, and the
// figures it earns.
//
// Sessions are counted per node. Each step every session may end (the
// model's exponential lifetime), the trace's demand says how many want
// service, and those without a node arrive: each goes to a node by the
// shares a resolver handed out, and a node admits no more than it is
// full. A session sent to a full, draining or gone node is refused and
// asks again the next step, as a client retrying does. In a Route53 pool a
// resolver keeps its answer for the record's TTL, so new sessions follow
// the shares of the last TTL's worth of answers alike (resolvers that
// asked at any moment of it); a load balancer's listener follows its
// weights at once. Existing sessions stay where they are: a node that
// joins takes only new ones.
type cluster struct {
	p     pool.Pool
	m     Model
	rng   *rand.Rand
	now   time.Duration
	nodes []*node
	// warm counts parked warm nodes; filling holds when each warm node
	// on its way will be parked; warmWant is the warm pool a launch
	// refills behind it (the configured one, or a policy's own).
	warm     int
	filling  []time.Duration
	warmWant int
	nextID   int
	// shift is true for mediascale, which moves traffic in the pool's
	// steps; the peers' load balancers send a node its full share once
	// healthy. fullShare is true when a policy's new node takes its full
	// share at once while the pool is saturated (traffic.Saturated).
	shift, fullShare bool
	// full is what a node admits, unit what it carries before it counts
	// as overloaded (the demand's node unit and the scale-out
	// threshold), target the load the policies aim for.
	full, unit, target float64
	// answers holds the last resolutions' shares, one a step, as many
	// as the record's TTL spans (one for a load balancer); next is the
	// slot the next one takes. eff is each node's share of the new
	// sessions now.
	answers [][]answer
	next    int
	eff     map[int]float64
	// perActive is each step's average sessions per ACTIVE node (what
	// the agents publish with the Pool dimension), NaN when none.
	perActive []float64
	// demand is the sessions wanting service now.
	demand float64
	fig    figures
}

func newCluster(p pool.Pool, m Model, pol Policy, full, target float64) *cluster {
	f := &cluster{p: p, m: m, rng: rand.New(rand.NewPCG(m.Seed, 0x6d656469617363)), shift: pol.Shifts(), full: full, target: target,
		unit: p.Alarms.ScaleOut.ConnectionsPerNode, eff: map[int]float64{}}
	if s, ok := pol.(interface{ FullShareWhenSaturated() bool }); ok {
		f.fullShare = s.FullShareWhenSaturated()
	}
	f.warm, f.warmWant = p.Capacity.WarmPool, p.Capacity.WarmPool
	f.answers = make([][]answer, resolutions(p, m))
	return f
}

// resolutions is how many steps' answers new sessions follow: the
// record's TTL in a Route53 pool, one step behind a load balancer.
func resolutions(p pool.Pool, m Model) int {
	if p.Traffic.Mode != pool.TrafficRoute53 || p.Traffic.Route53 == nil {
		return 1
	}
	ttl := time.Duration(p.Traffic.Route53.TTL) * time.Second
	return max(1, int(math.Round(float64(ttl)/float64(m.Step.D()))))
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
			if f.warm+len(f.filling) < f.warmWant {
				f.filling = append(f.filling, f.now+f.m.coldLead(f.p))
				// The refill runs while it is launched, deployed and
				// probed.
				f.fig.nodeSeconds += f.m.coldLead(f.p).Seconds()
			}
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

// remove takes n serving nodes away: the newest still on their way in
// first, then serving ones in the order the removal chooses.
func (f *cluster) remove(n int, how Removal, execution int) {
	for i := len(f.nodes) - 1; i >= 0 && n > 0; i-- {
		if x := f.nodes[i]; x.phase == launching {
			x.phase = gone
			f.fig.nodeSeconds += (f.now - x.launched).Seconds()
			n--
		}
	}
	var serving []*node
	for _, x := range f.nodes {
		if x.phase == active || x.phase == shifting {
			serving = append(serving, x)
		}
	}
	switch how {
	case Drain:
		slices.SortStableFunc(serving, func(a, b *node) int { return cmp.Compare(a.sessions, b.sessions) })
	case Grace:
		slices.Reverse(serving)
	}
	for _, x := range serving[:min(n, len(serving))] {
		x.execution = execution
		x.weight, x.route = 0, 0
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
			n.phase, n.weight, n.route = active, 1, 1
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

// sessions is every session the pool serves, draining nodes' included.
func (f *cluster) sessions() float64 {
	s := 0.0
	for _, n := range f.nodes {
		s += n.sessions
	}
	return s
}

// activeAverage is the average sessions on an ACTIVE node, what the
// agents publish with the Pool dimension; ok is false without one.
func (f *cluster) activeAverage() (avg float64, ok bool) {
	sum, n := 0.0, 0
	for _, x := range f.nodes {
		if x.phase == active {
			sum += x.sessions
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// saturated is traffic.Saturated's rule on the simulated pool: every
// ACTIVE node carries at least the scale-out threshold.
func (f *cluster) saturated() bool {
	seen := false
	for _, x := range f.nodes {
		if x.phase == active {
			if x.sessions < f.unit {
				return false
			}
			seen = true
		}
	}
	return seen
}

// advance moves every node to time t: probes pass, steps bake, sessions
// end, drains end. dt is the time since the last step.
func (f *cluster) advance(t, dt time.Duration) {
	f.now = t
	for len(f.filling) > 0 && f.filling[0] <= t {
		f.filling = f.filling[1:]
		f.warm++
	}
	decay := math.Exp(-dt.Seconds() / f.m.SessionLifetime.D().Seconds())
	threshold := float64(f.p.Drain.ConnectionThreshold)
	for _, n := range f.nodes {
		n.sessions *= decay
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
// bake for their time, cut to the pool's pressure bake while its ACTIVE
// nodes carry more than the scale-out threshold (traffic.Pressure). A
// policy with fullShare sends a node its full share at once while the
// pool is saturated, for one pressure bake before it is ACTIVE.
func (f *cluster) enterStep(n *node, i int, t time.Duration) {
	if f.fullShare && i < len(n.steps)-1 && f.saturated() {
		n.steps = []pool.Step{{Percent: 100, Bake: pool.Duration(f.p.Traffic.PressureBakeOrDefault())}, {Percent: 100}}
		i = 0
	}
	n.step = i
	n.weight = float64(n.steps[i].Percent) / 100
	n.route = n.weight
	if i == len(n.steps)-1 {
		n.phase, n.weight, n.route, n.activeAt = active, 1, 1, t
		return
	}
	bake := n.steps[i].Bake.D()
	if avg, ok := f.activeAverage(); ok && avg > f.unit {
		bake = min(bake, f.p.Traffic.PressureBakeOrDefault())
	}
	n.stepUntil = t + bake
}

// arrive brings the sessions wanting service and holding none to the
// nodes their answers name. When the demand has fallen below what the
// nodes hold, the audience leaves every node alike.
func (f *cluster) arrive() {
	f.resolve()
	held := f.sessions()
	if held > f.demand {
		k := f.demand / held
		for _, n := range f.nodes {
			n.sessions *= k
		}
		return
	}
	want := f.demand - held
	if want <= 0 {
		return
	}
	for _, n := range f.nodes {
		if n.phase != shifting && n.phase != active {
			continue
		}
		if e := f.eff[n.id]; e > 0 {
			n.sessions += min(want*e, math.Max(f.full-n.sessions, 0))
		}
	}
}

// resolve records this step's answer (each serving node's share of its
// record weights) and sets each node's share of new sessions: the mean
// of the answers resolvers still hold. A share of a node that no longer
// serves is a refused session.
func (f *cluster) resolve() {
	total := 0.0
	for _, n := range f.nodes {
		if n.phase == shifting || n.phase == active {
			total += n.route
		}
	}
	slot := f.answers[f.next][:0]
	if total > 0 {
		for _, n := range f.nodes {
			if (n.phase == shifting || n.phase == active) && n.route > 0 {
				slot = append(slot, answer{n.id, n.route / total})
			}
		}
	}
	f.answers[f.next] = slot
	f.next = (f.next + 1) % len(f.answers)
	clear(f.eff)
	for _, a := range f.answers {
		for _, x := range a {
			f.eff[x.id] += x.share / float64(len(f.answers))
		}
	}
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
