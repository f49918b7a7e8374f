package simulation

import (
	"fmt"
	"math"
	"time"

	"github.com/mediascale/mediascale/shared/alarm"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// Epoch is the simulated wall-clock time of a trace's start: a Monday at
// midnight UTC, so daily and weekly patterns line up with the calendar.
var Epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Policy is one way of deciding a pool's capacity. Step is called once per
// simulation step, after the fleet has moved to now; the policy acts on
// the fleet by launching and removing nodes.
type Policy interface {
	Name() string
	// Shifts says whether the policy's nodes take traffic in the pool's
	// shift steps (mediascale's workflow) or all at once when healthy
	// (a load balancer's target).
	Shifts() bool
	Step(f *cluster, now time.Time)
}

// figures accumulates one policy's run.
type figures struct {
	under, over              float64 // node units x seconds
	underTime, overTime      float64 // seconds
	supplyChanges            int
	demandChanges            int
	lastSupply, lastDemand   int
	hot                      float64 // session-seconds on a node above its target
	refused, lastUnserved    float64
	cut                      float64
	nodeSeconds              float64
	parkedSeconds            float64
	launches, executions     int
	rounds                   int
	transitions, invocations float64
	peak                     int
}

// Figures are one policy's results (README.md, "Simulating a pool").
type Figures struct {
	Policy string `json:"policy"`
	// The SPEC Research Group's elasticity metrics (BUNGEE), in node
	// units: demand is the sessions over what one node carries before it
	// counts as overloaded (the scale-out alarm's threshold), rounded up;
	// supply is the pool's serving weight.
	UnderAccuracy  float64 `json:"underProvisioningAccuracy"`
	OverAccuracy   float64 `json:"overProvisioningAccuracy"`
	UnderTimeShare float64 `json:"underProvisioningTimeShare"`
	OverTimeShare  float64 `json:"overProvisioningTimeShare"`
	Jitter         float64 `json:"jitterPerMinute"`
	// The user's view: sessions on a node above its target, sessions
	// refused (sent to a full, draining or gone node, or finding none),
	// sessions cut at scale-in, and harm, the refused and the cut
	// together: every user the pool failed.
	HotSessionMinutes float64 `json:"sessionMinutesAboveTarget"`
	Refused           float64 `json:"sessionsRefused"`
	Cut               float64 `json:"sessionsCutAtScaleIn"`
	Harm              float64 `json:"harm"`
	// The bill: running nodes, and apart from them the warm pool's
	// parked ones, which cost their volumes alone.
	NodeHours       float64 `json:"nodeHours"`
	ParkedNodeHours float64 `json:"parkedNodeHours"`
	PeakNodes       int     `json:"peakNodes"`
	Launches        int     `json:"launches"`
	Executions      int     `json:"scalingActions"`
	// PressureRounds are the rounds of mediascale's pressure loops:
	// decisions every 15 s while the pool is overloaded, counted in
	// the transitions and invocations beside them.
	PressureRounds    int     `json:"pressureRounds"`
	Transitions       float64 `json:"stateTransitions"`
	LambdaInvocations float64 `json:"lambdaInvocations"`
}

// Point of a plot: demand and supply in node units at one time.
type SeriesPoint struct {
	At     float64 `json:"seconds"`
	Demand float64 `json:"demand"`
	Supply float64 `json:"supply"`
}

// Result is one policy's figures and its demand and supply over time.
type Result struct {
	Figures
	Series []SeriesPoint `json:"series"`
}

// FullNode is how many sessions one node admits: the media server's own
// limit (the deploy parameter maxConnections) when the pool sets it, else
// the scale-out alarm's threshold. Sessions beyond it are refused, and a
// node's agent never reports more.
func FullNode(p pool.Pool) float64 {
	if v := p.AdmissionLimit(); v > 0 {
		return v
	}
	return p.Alarms.ScaleOut.ConnectionsPerNode
}

// Run replays the trace through one policy under the model.
func Run(p pool.Pool, m Model, t Trace, pol Policy) (Result, error) {
	if err := m.check(); err != nil {
		return Result{}, err
	}
	full := FullNode(p)
	target := capacity.Targets(p)[pool.MetricConnections]
	if full <= 0 || target <= 0 {
		return Result{}, fmt.Errorf("pool %s: the simulator needs alarms.scaleOut.connectionsPerNode, sessions being what a trace counts", p.Name)
	}
	f := newCluster(p, m, pol, full, target)
	// Every policy starts from the pool as it stands between shows: its
	// min nodes serving at full weight, warmed up, and named in every
	// resolver's answer, and its warm pool parked, so no policy's figures
	// carry the pool's first launch.
	for range p.Capacity.Min {
		f.nextID++
		f.nodes = append(f.nodes, &node{id: f.nextID, phase: active, weight: 1, route: 1, activeAt: -Warmup})
	}
	for range f.answers {
		f.resolve()
	}
	step := m.Step.D()
	end := t.Duration()
	steps := int(end/step) + 1
	f.perActive = make([]float64, 0, steps)
	every := max(1, steps/1500)
	var series []SeriesPoint
	cur := cursor{t: t}
	for i := 0; i < steps; i++ {
		at := time.Duration(i) * step
		f.demand = cur.at(at)
		f.advance(at, step)
		f.arrive()
		pol.Step(f, Epoch.Add(at))
		f.account(step)
		if i%every == 0 {
			series = append(series, SeriesPoint{At: at.Seconds(), Demand: math.Ceil(f.demand/f.unit - 1e-9), Supply: round2(f.weight())})
		}
	}
	for _, n := range f.nodes {
		f.fig.nodeSeconds += (f.now - n.launched).Seconds()
	}
	return Result{Figures: f.fig.result(pol.Name(), end), Series: series}, nil
}

// account adds one step of dt to the figures.
func (f *cluster) account(dt time.Duration) {
	s := dt.Seconds()
	demand := math.Ceil(f.demand/f.unit - 1e-9)
	supply := f.weight()
	switch {
	case demand > supply+1e-9:
		f.fig.under += (demand - supply) * s
		f.fig.underTime += s
	case supply > demand+1e-9:
		f.fig.over += (supply - demand) * s
		f.fig.overTime += s
	}
	if d := int(demand); d != f.fig.lastDemand {
		f.fig.demandChanges++
		f.fig.lastDemand = d
	}
	serving := 0
	for _, n := range f.nodes {
		if n.weight > 0 {
			serving++
		}
		if n.sessions > f.target+1e-9 {
			f.fig.hot += n.sessions * s
		}
	}
	if serving != f.fig.lastSupply {
		f.fig.supplyChanges++
		f.fig.lastSupply = serving
	}
	f.fig.peak = max(f.fig.peak, len(f.nodes))
	f.fig.parkedSeconds += float64(f.warm) * s
	unserved := math.Max(f.demand-f.sessions(), 0)
	if unserved > f.fig.lastUnserved {
		f.fig.refused += unserved - f.fig.lastUnserved
	}
	f.fig.lastUnserved = unserved
	per := math.NaN()
	if avg, ok := f.activeAverage(); ok {
		per = avg
	}
	f.perActive = append(f.perActive, per)
}

func (g figures) result(name string, d time.Duration) Figures {
	secs := math.Max(d.Seconds(), 1)
	return Figures{
		Policy:        name,
		UnderAccuracy: round2(g.under / secs), OverAccuracy: round2(g.over / secs),
		UnderTimeShare: round4(g.underTime / secs), OverTimeShare: round4(g.overTime / secs),
		Jitter:            round4(float64(g.supplyChanges-g.demandChanges) / (secs / 60)),
		HotSessionMinutes: math.Round(g.hot / 60), Refused: math.Round(g.refused), Cut: math.Round(g.cut),
		Harm:      math.Round(g.refused + g.cut),
		NodeHours: round2(g.nodeSeconds / 3600), ParkedNodeHours: round2(g.parkedSeconds / 3600), PeakNodes: g.peak, Launches: g.launches,
		Executions: g.executions, PressureRounds: g.rounds, Transitions: math.Round(g.transitions), LambdaInvocations: math.Round(g.invocations),
	}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }

// watch is one alarm as a policy sees it: CloudWatch's rules (package
// alarm) over the pool's average sessions per ACTIVE node.
type watch struct {
	def  alarm.Definition
	next time.Time
	// zero: the alarm watches CPU or bandwidth, which a trace of
	// sessions does not give; the simulator reads them as 0 wherever
	// sessions are measured, so the sessions alarms decide.
	zero bool
}

func newWatch(name string, spec pool.AlarmSpec) *watch {
	return &watch{zero: spec.MetricName != "" && spec.MetricName != "Connections", def: alarm.Definition{
		Name: name, Statistic: "Average", Period: spec.Period.D(), EvaluationPeriods: spec.EvaluationPeriods,
		Threshold: spec.Threshold, ComparisonOperator: spec.Comparison, TreatMissingData: spec.TreatMissingData,
		State: alarm.InsufficientData,
	}}
}

// evaluate runs the alarm when CloudWatch would, and reports a move into
// ALARM.
func (w *watch) evaluate(f *cluster, now time.Time) (toAlarm bool) {
	if now.Before(w.next) {
		return false
	}
	w.next = now.Truncate(alarm.EvaluateEvery(w.def.Period)).Add(alarm.EvaluateEvery(w.def.Period))
	values := f.periodAverages(w.def, now)
	_, end := w.def.Range(now)
	if w.zero {
		for i, v := range values {
			if v != nil {
				values[i] = new(float64)
			}
		}
	}
	state, _ := alarm.Evaluate(w.def, end, values)
	toAlarm = state == alarm.Alarm && w.def.State != alarm.Alarm
	w.def.State = state
	return toAlarm
}

// periodAverages is the alarm's evaluation range as CloudWatch reads it:
// one average per complete period, nil for a period without a datapoint.
func (f *cluster) periodAverages(d alarm.Definition, now time.Time) []*float64 {
	start, _ := d.Range(now)
	step := f.m.Step.D()
	out := make([]*float64, d.RangePeriods())
	for k := range out {
		from := start.Add(time.Duration(k) * d.Period).Sub(Epoch)
		to := from + d.Period
		sum, n := 0.0, 0
		for i := max(int(from/step), 0); i < len(f.perActive) && time.Duration(i)*step < to; i++ {
			if v := f.perActive[i]; !math.IsNaN(v) {
				sum += v
				n++
			}
		}
		if n > 0 {
			avg := sum / float64(n)
			out[k] = &avg
		}
	}
	return out
}
