package simulation

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/traffic"
)

// Mediascale is the product's own policy: capacity.Recommend, the function
// the trigger Lambda calls, fed what the trigger feeds it (the node
// records with their agents' heartbeats, the load window, the cooldown
// marks, the scaling alarms' states), on every move of a scaling alarm
// into ALARM (the fast path) and on the schedule's minute. The pool lock
// is the trigger's: a scale-out holds it only until its plan has written
// its nodes, so a later decision may grow the pool while earlier nodes
// still shift in; a scale-in holds it until its drains end, and a
// decision to grow meanwhile cancels those drains (its nodes return to
// service) and is itself dropped ("pool busy"), as the trigger does.
type Mediascale struct {
	p       pool.Pool
	alarms  map[pool.AlarmRef]*watch
	refs    []pool.AlarmRef
	window  []fleet.Sample
	lastOut time.Time
	lastIn  time.Time
	// scaleIn is the scale-in execution holding the pool lock, 0 for none.
	scaleIn int
	nextRun int
	// round is when the pressure loop's next round decides (zero: no
	// loop runs).
	round time.Time
	// Floor, when set, is a forecast's floor for each moment.
	Floor func(time.Time) int
	// shows are the announced shows, raising the floor one lead time
	// ahead as capacity.ShowFloor does; lead is the pool's measured lead,
	// the model's cold launch plus the shift bakes.
	shows []capacity.Show
	lead  time.Duration
	label string
}

// NewMediascale returns the product's policy for the pool.
func NewMediascale(p pool.Pool) *Mediascale {
	m := &Mediascale{p: p, alarms: map[pool.AlarmRef]*watch{}, label: "mediascale"}
	for _, dir := range []pool.Direction{pool.ScaleOut, pool.ScaleIn} {
		for _, metric := range pool.Metrics {
			ref := pool.AlarmRef{Pool: p.Name, Direction: dir, Metric: metric}
			m.alarms[ref] = newWatch(pool.AlarmName("sim", p.Name, dir, metric), p.Alarm(dir, metric))
			m.refs = append(m.refs, ref)
		}
	}
	return m
}

func (m *Mediascale) Name() string { return m.label }
func (m *Mediascale) Shifts() bool { return true }

// FullShareWhenSaturated: the shift step sends a new node its full share
// at once while every ACTIVE node is at its scale-out threshold.
func (m *Mediascale) FullShareWhenSaturated() bool { return true }

// Step makes the trigger's decisions of this moment: on an alarm's move
// into ALARM, on the schedule's minute, and on a round of the pool's
// pressure loop, which a decision under pressure starts and which decides
// the pool every events.PressureInterval (plus the model's trigger time)
// until a round finds it within target, as the loop's state machine
// does.
func (m *Mediascale) Step(f *cluster, now time.Time) {
	for _, ref := range m.refs {
		if m.alarms[ref].evaluate(f, now) {
			m.loop(f, now, m.decide(f, now, capacity.Signal{Source: capacity.SourceAlarm, Alarm: m.alarms[ref].def.Name, Direction: ref.Direction, Metric: ref.Metric}))
		}
	}
	if now.Truncate(time.Minute).Equal(now) {
		rec := m.decide(f, now, capacity.Signal{Source: capacity.SourceSchedule})
		m.loop(f, now, rec)
		m.keepWarm(f, rec)
		m.balance(f, now)
	}
	if !m.round.IsZero() && !now.Before(m.round) {
		m.round = time.Time{}
		m.loop(f, now, m.decide(f, now, capacity.Signal{Source: capacity.SourcePressure}))
	}
}

// keepWarm is the schedule's warm-pool upkeep: the warm pool the decision
// wants (capacity.WarmWant: more than configured ahead of a rise) is
// filled with nodes launched, deployed and probed, then parked, and its
// surplus retired. Each node filling it costs its cold lead in
// node-seconds and the transitions of a warm fill.
func (m *Mediascale) keepWarm(f *cluster, rec capacity.Recommendation) {
	want := rec.Warm.Want
	f.warmWant = want
	have := f.warm + len(f.filling)
	switch {
	case want > have:
		for range want - have {
			f.filling = append(f.filling, f.now+f.m.coldLead(m.p))
			f.fig.nodeSeconds += f.m.coldLead(m.p).Seconds()
			f.fig.transitions += warmFillTransitions
		}
		f.fig.executions++
		f.fig.transitions += f.m.TransitionsPerExecution
	case want < f.warm && rec.Direction == capacity.Hold:
		f.warm = want
	}
}

// warmFillTransitions is what a node filling the warm pool costs in Step
// Functions transitions (README.md, "The warm pool").
const warmFillTransitions = 13

// loop keeps the pressure loop going after a decision under pressure.
func (m *Mediascale) loop(f *cluster, now time.Time, rec capacity.Recommendation) {
	if rec.Pressure != "" && m.round.IsZero() {
		m.round = now.Add(events.PressureInterval + f.m.Trigger.D())
		// A round is three transitions (Wait, Decide, Pressed) and one
		// invocation of the trigger.
		f.fig.rounds++
		f.fig.transitions += 3
		f.fig.invocations++
	}
}

// balance is the heal function's minute in a Route53 pool with load-aware
// weights: traffic.Balance moves the ACTIVE nodes' record weights toward
// their headroom.
func (m *Mediascale) balance(f *cluster, now time.Time) {
	if m.p.Traffic.Mode != pool.TrafficRoute53 || !m.p.Traffic.LoadAwareWeights() {
		return
	}
	current := map[string]int{}
	byID := map[string]*node{}
	for _, n := range f.nodes {
		if n.phase == active {
			id := nodeID(n)
			current[id] = int(math.Round(n.route * traffic.FullWeight))
			byID[id] = n
		}
	}
	for id, w := range traffic.Balance(m.p, m.records(f, now), current, now) {
		byID[id].route = float64(w) / traffic.FullWeight
	}
}

func (m *Mediascale) decide(f *cluster, now time.Time, sig capacity.Signal) capacity.Recommendation {
	in := capacity.Inputs{Pool: m.p, Nodes: m.records(f, now), Window: m.window, LastScaleOut: m.lastOut, LastScaleIn: m.lastIn,
		AlarmStates: map[pool.AlarmRef]string{}, Signal: sig, Now: now}
	for ref, w := range m.alarms {
		in.AlarmStates[ref] = w.def.State
	}
	if m.Floor != nil {
		in.Floor = m.Floor(now)
	}
	if len(m.shows) > 0 {
		current, _ := f.capacity()
		warm := capacity.WarmStart{Ready: f.warm, Current: current, Lead: f.m.warmLead(m.p) + m.p.ShiftTime()}
		if floor, by, _ := capacity.ShowFloor(m.p, m.shows, m.window, now, m.lead, warm); floor > in.Floor {
			in.Floor, in.FloorSource = floor, by
		}
		in.Ahead, _, _ = capacity.ShowFloor(m.p, m.shows, m.window, now.Add(m.lead), m.lead, capacity.WarmStart{})
	}
	if m.Floor != nil {
		in.Ahead = max(in.Ahead, m.Floor(now.Add(m.lead)))
	}
	rec := capacity.Recommend(in)
	m.window = fleet.AppendSample(m.window, rec.Sample, capacity.WindowKeep(m.p))
	if rec.Direction == capacity.Hold {
		return rec
	}
	if m.scaleIn != 0 && f.busy(m.scaleIn) {
		if rec.Direction == capacity.Grow {
			f.restore(m.scaleIn)
		}
		return rec
	}
	m.scaleIn = 0
	m.nextRun++
	n := rec.Change
	if rec.Direction == capacity.Grow {
		f.launch(n, m.nextRun)
		m.lastOut = now
	} else {
		n = -n
		m.scaleIn = m.nextRun
		f.remove(n, Drain, m.scaleIn)
		m.lastIn = now
	}
	f.fig.executions++
	f.fig.transitions += f.m.TransitionsPerExecution + f.m.TransitionsPerNode*float64(n)
	f.fig.invocations += f.m.InvocationsPerExecution + f.m.InvocationsPerNode*float64(n)
	return rec
}

// records are the node records the trigger would read: each node's state,
// and for a node taking traffic its agent's fresh heartbeat with its
// sessions.
func (m *Mediascale) records(f *cluster, now time.Time) []fleet.Node {
	out := make([]fleet.Node, 0, len(f.nodes))
	for _, n := range f.nodes {
		r := fleet.Node{Pool: m.p.Name, ID: nodeID(n), Goal: events.GoalServe}
		switch n.phase {
		case launching:
			r.State = fleet.Provisioning
		case shifting:
			r.State = fleet.Shifting
		case active:
			r.State = fleet.Active
		case draining:
			r.State = fleet.Draining
		}
		if n.phase == shifting || n.phase == active {
			r.Heartbeat = &fleet.Heartbeat{At: now, Healthy: true, Load: fleet.Load{Connections: n.sessions}}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

func nodeID(n *node) string { return fmt.Sprintf("n-%d", n.id) }
