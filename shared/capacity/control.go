package capacity

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Controller inputs and the recommendation it makes. The formula, in
// README.md ("How the controller sizes a pool"):
//
//	target(m)   = control.targetPercent % of alarms.scaleOut.<m> per node
//	desired(m)  = ceil(total load(m) / target(m))      for m in connections, CPU, bandwidth
//	desired     = max over m of desired(m)             the highest metric wins
//
// where the total is the sum over the nodes whose heartbeat is fresh and
// healthy, and the current capacity C counts every node on its way in or in
// service (in-flight nodes count, as EC2 Auto Scaling counts warming
// instances). The pool grows when some metric's load per node of C is more
// than the tolerance above its target, by at most
// max(scaleOutStep, C x maxGrowthPercent %) per decision. It shrinks only
// when every metric is more than the tolerance below its target, no node
// is in flight, no scale-out alarm is in ALARM, the scale-in cooldown has
// passed, and the window of samples covers control.scaleInWindow: then to
// the largest size any sample of the window called for, by at most
// scaleInStep. It never leaves [max(min, floor), max].

// Signal is what woke the controller: an alarm's state change, the
// schedule, or an operator.
type Signal struct {
	// Source is "alarm", "schedule" or "operator".
	Source string `json:"source"`
	// Alarm names the alarm; Direction and Metric are what it watches.
	Alarm     string         `json:"alarm,omitempty"`
	Direction pool.Direction `json:"direction,omitempty"`
	Metric    pool.Metric    `json:"metric,omitempty"`
}

// Signal sources.
const (
	SourceAlarm    = "alarm"
	SourceSchedule = "schedule"
	SourceOperator = "operator"
	// SourcePressure is a round of the pool's pressure loop, every 15 s
	// while it is overloaded.
	SourcePressure = "pressure"
)

// Inputs is everything one decision reads. Window holds the pool's earlier
// samples, oldest first; the current sample is computed from the nodes.
type Inputs struct {
	Pool   pool.Pool
	Nodes  []fleet.Node
	Window []fleet.Sample
	// AlarmStates maps each of the pool's scaling alarms that exists to its
	// state (OK, ALARM, INSUFFICIENT_DATA).
	AlarmStates map[pool.AlarmRef]string
	// Floor is the forecast's or the shows' lowest capacity; 0 for none.
	// FloorSource names it when it is not the forecast's ("show final").
	Floor       int
	FloorSource string
	// Ahead is the floor the forecast or the shows will ask for one lead
	// time from now: the warm pool grows to cover it (WarmWant).
	Ahead int
	// Refused is the sessions the entry dispatcher turned away that are
	// waiting to ask again (Refusals): demand no node has seen.
	Refused float64
	// LastScaleOut and LastScaleIn are the pool's cooldown marks (zero when
	// it never scaled that way).
	LastScaleOut time.Time
	LastScaleIn  time.Time
	Signal       Signal
	Now          time.Time
}

// Directions of a recommendation.
const (
	Hold = ""
	Grow = "out"
	// Shrink is a scale-in.
	Shrink = "in"
)

// MetricView is one metric's part in a decision.
type MetricView struct {
	Total   float64 `json:"total"`
	Target  float64 `json:"target"`
	PerNode float64 `json:"perNode"`
	Desired int     `json:"desired"`
}

// Recommendation is the controller's decision for one pool.
type Recommendation struct {
	Pool      string `json:"pool"`
	Direction string `json:"direction"`
	// Current counts every node on its way in or in service.
	Current   int `json:"current"`
	InFlight  int `json:"inFlight"`
	Reporting int `json:"reporting"`
	Unhealthy int `json:"unhealthy"`
	Desired   int `json:"desired"`
	// LoadNodes is the nodes the measured load alone calls for (0 when no
	// node reports): the history the forecaster learns from.
	LoadNodes int `json:"loadNodes"`
	// Floor is the forecast's floor the decision was given.
	Floor int `json:"floor"`
	// Change is Desired - Current: positive to grow, negative to shrink.
	Change  int                   `json:"change"`
	Reason  string                `json:"reason"`
	Metrics map[string]MetricView `json:"metrics"`
	// Sample is the load the decision read, for the window.
	Sample fleet.Sample `json:"sample"`
	// Warm is the warm pool: when it needs upkeep and the pool neither
	// grows (whose plan keeps the warm pool too) nor shrinks, the
	// schedule's decision starts a scale-out for the upkeep alone.
	Warm Warm `json:"warm"`
	// Replacing names the unhealthy nodes a growing decision replaces;
	// once its scale-out has started they are no longer owed.
	Replacing []string `json:"replacing,omitempty"`
	// Pressure says why the pool is overloaded enough to be decided again
	// within seconds ("" when it is within target): the trigger keeps a
	// pressure loop running while it is set.
	Pressure string `json:"pressure,omitempty"`
}

// LogAttrs puts the decision in a log line.
func (r Recommendation) LogAttrs() []any {
	return []any{"pool", r.Pool, "direction", r.Direction, "current", r.Current, "inFlight", r.InFlight,
		"reporting", r.Reporting, "desired", r.Desired, "change", r.Change, "reason", r.Reason, "metrics", r.Metrics, "pressure", r.Pressure}
}

// metricNames are the metrics in report order, with their load field.
var metricNames = []pool.Metric{pool.MetricConnections, pool.MetricCPU, pool.MetricBandwidth}

// LoadOf is a load's value for one metric.
func LoadOf(l fleet.Load, m pool.Metric) float64 {
	switch m {
	case pool.MetricConnections:
		return l.Connections
	case pool.MetricCPU:
		return l.CPUPercent
	default:
		return l.BandwidthMbps
	}
}

// Utilization is a node's busiest metric in percent of the pool's scale-out
// thresholds, what its operators call busy; share scales the thresholds
// for a node still shifting in (0.3 at a 30 % step).
func Utilization(p pool.Pool, l fleet.Load, share float64) float64 {
	t := p.Alarms.ScaleOut
	u := 0.0
	for _, x := range [3][2]float64{{l.Connections, t.ConnectionsPerNode}, {l.CPUPercent, t.CPUPercent}, {l.BandwidthMbps, t.BandwidthMbpsPerNode}} {
		if x[1] > 0 && share > 0 {
			u = math.Max(u, 100*x[0]/(x[1]*share))
		}
	}
	return u
}

// NodesFor is the nodes sessions need at the pool's connection target,
// rounded up and never above max; 0 for a pool without a connection
// threshold.
func NodesFor(p pool.Pool, sessions float64) int {
	target := Targets(p)[pool.MetricConnections]
	if target <= 0 {
		return 0
	}
	return min(int(math.Ceil(sessions/target-1e-9)), p.Capacity.Max)
}

// Targets returns the per-node load the controller aims for, per metric.
func Targets(p pool.Pool) map[pool.Metric]float64 {
	pct := p.Controller().TargetPercent / 100
	t := p.Alarms.ScaleOut
	return map[pool.Metric]float64{
		pool.MetricConnections: t.ConnectionsPerNode * pct,
		pool.MetricCPU:         t.CPUPercent * pct,
		pool.MetricBandwidth:   t.BandwidthMbpsPerNode * pct,
	}
}

// Measurement is what a decision reads from the node records.
type Measurement struct {
	fleet.Sample
	// InFlight nodes are on their way in: serving but not yet ACTIVE.
	InFlight int
	// Unhealthy nodes' agents say their media server does not answer.
	Unhealthy int
	// Silent nodes are ACTIVE but send no fresh, healthy heartbeat.
	Silent int
	// Active counts ACTIVE nodes that report, Saturated those of them at
	// their media server's admission limit.
	Active, Saturated int
	// Owed are the nodes taken out as unhealthy whose replacement the
	// pool is still owed (package healing).
	Owed []string
}

// saturation is the share of a node's admission limit at which its load
// stops saying how much demand there is: the media server refuses the
// sessions past the limit, and agents report a few seconds late.
const saturation = 0.95

// saturationHeadroom is how much more demand than saturated nodes admit
// the controller assumes. The simulator's flash crowd and collapse (README,
// "Where mediascale stands") put it here: the under-provisioning is the
// same from 25 % to 100 %, and the overshoot after a plateau that sits
// exactly at the nodes' limit grows with it.
const saturationHeadroom = 0.5

// Measure sums the load of the nodes that count: serving nodes with a
// fresh, healthy heartbeat. It also counts capacity, in-flight, unhealthy
// and silent nodes.
func Measure(p pool.Pool, nodes []fleet.Node, now time.Time) Measurement {
	m := Measurement{Sample: fleet.Sample{At: now}}
	maxAge, limit := p.HeartbeatMaxAge(), p.AdmissionLimit()
	for _, n := range nodes {
		if n.Goal == events.GoalReplace {
			m.Owed = append(m.Owed, n.ID)
		}
		if !n.Serving() {
			continue
		}
		m.Capacity++
		if n.State != fleet.Active {
			m.InFlight++
		}
		hb := n.Heartbeat
		switch {
		case hb.Fresh(now, maxAge) && hb.Healthy:
			m.Reporting++
			m.Load = m.Load.Add(hb.Load)
			if n.State == fleet.Active {
				m.Active++
				if limit > 0 && hb.Load.Connections >= saturation*limit {
					m.Saturated++
				}
			}
			continue
		case hb.Fresh(now, maxAge):
			m.Unhealthy++
		}
		if n.State == fleet.Active {
			m.Silent++
		}
	}
	return m
}

// desiredFor is the proportional size a load calls for: the highest metric
// wins.
func desiredFor(load fleet.Load, targets map[pool.Metric]float64) int {
	d := 0
	for _, m := range metricNames {
		if t := targets[m]; t > 0 {
			d = max(d, int(math.Ceil(LoadOf(load, m)/t-1e-9)))
		}
	}
	return d
}

// pressure says why a pool is overloaded enough to be decided again within
// seconds: some metric's load per node of its capacity (in flight
// counted) past the tolerance above its target, the dispatcher refusing
// sessions, or a scale-out alarm in ALARM. A pool at max is never under
// pressure: no decision can add a node.
func pressure(p pool.Pool, in Inputs, over []string, current int) string {
	if current >= p.Capacity.Max {
		return ""
	}
	why := slices.Clone(over)
	if in.Refused >= 0.5 {
		why = append(why, fmt.Sprintf("the dispatcher refused %.0f sessions", in.Refused))
	}
	var alarmed []string
	for ref, st := range in.AlarmStates {
		if ref.Direction == pool.ScaleOut && st == "ALARM" {
			alarmed = append(alarmed, fmt.Sprintf("the %s scale-out alarm in ALARM", ref.Metric))
		}
	}
	slices.Sort(alarmed)
	return strings.Join(append(why, alarmed...), "; ")
}

// loadAt is the load the window's last sample at or before t read: what
// the decision at t saw.
func loadAt(window []fleet.Sample, t time.Time) (fleet.Load, bool) {
	for i := len(window) - 1; i >= 0; i-- {
		if !window[i].At.After(t) {
			return window[i].Load, true
		}
	}
	return fleet.Load{}, false
}

// WindowKeep is how far back a pool's load window reaches: past the
// stabilization window, so its oldest sample proves the window is covered,
// and past a forecast's stand-down time.
func WindowKeep(p pool.Pool) time.Duration {
	return max(2*p.Controller().ScaleInWindow.D(), StandDown) + 5*time.Minute
}

// Recommend is the controller: it decides one pool's desired capacity.
func Recommend(in Inputs) Recommendation {
	p := in.Pool
	c := p.Controller()
	ms := Measure(p, in.Nodes, in.Now)
	sample, inFlight := ms.Sample, ms.InFlight
	// Sessions the dispatcher refused are demand as surely as the ones
	// the nodes carry; they count wherever the connections do.
	if in.Refused > 0 && sample.Reporting > 0 {
		sample.Load.Connections += in.Refused
	}
	r := Recommendation{Pool: p.Name, Current: sample.Capacity, InFlight: inFlight, Reporting: sample.Reporting,
		Unhealthy: ms.Unhealthy, Desired: sample.Capacity, Metrics: map[string]MetricView{}, Sample: sample,
		Warm: WarmUpkeep(p, in.Nodes, WarmWant(p, in.Ahead, sample.Capacity))}
	floor := min(max(p.Capacity.Min, in.Floor), p.Capacity.Max)
	targets := Targets(p)
	tol := c.TolerancePercent / 100

	// Every metric's view, and whether it wants more or less than C.
	var over, notUnder []string
	for _, m := range metricNames {
		t := targets[m]
		if t <= 0 {
			continue
		}
		total := LoadOf(sample.Load, m)
		v := MetricView{Total: round2(total), Target: round2(t), Desired: int(math.Ceil(total/t - 1e-9))}
		if r.Current > 0 {
			v.PerNode = round2(total / float64(r.Current))
		}
		r.Metrics[string(m)] = v
		// With no capacity at all, any load is over target and none is
		// under it.
		ratio := 0.0
		switch {
		case r.Current > 0:
			ratio = total / (float64(r.Current) * t)
		case total > 0:
			ratio = math.Inf(1)
		}
		if ratio > 1+tol {
			over = append(over, fmt.Sprintf("%s %.4g per node > %.4g target", m, v.PerNode, t))
		}
		// For scale-in an ACTIVE node that does not report is taken to
		// be at its target, as HPA takes pods without metrics on
		// scale-down: what cannot be seen is never shrunk away.
		if r.Current > 0 && (total+float64(ms.Silent)*t)/(float64(r.Current)*t) >= 1-tol {
			notUnder = append(notUnder, string(m))
		}
	}
	proportional := desiredFor(sample.Load, targets)
	r.Pressure = pressure(p, in, over, r.Current)
	r.Floor = in.Floor
	if sample.Reporting > 0 {
		r.LoadNodes = proportional
	}
	// When every ACTIVE node is at its admission limit, the sessions they
	// refuse are demand no agent sees: the load measured is a floor. The
	// controller then takes the demand to be saturationHeadroom more than
	// those nodes admit, within the growth bound as ever. The estimate
	// rests on the ACTIVE nodes alone, so decisions while its nodes are
	// still in flight ask for the same size and do not compound; it rises
	// again only once those nodes serve and fill too.
	if limit := p.AdmissionLimit(); ms.Active > 0 && ms.Saturated == ms.Active {
		unseen := fleet.Load{Connections: float64(ms.Active) * limit * (1 + saturationHeadroom)}
		if d := desiredFor(unseen, targets); d > proportional {
			proportional = d
			over = append(over, fmt.Sprintf("all %d ACTIVE nodes at their admission limit of %g sessions, demand past it unseen and taken as %g%% more",
				ms.Active, limit, saturationHeadroom*100))
		}
	}
	settle := func(dir string, desired int, reason string) Recommendation {
		r.Direction, r.Desired, r.Change, r.Reason = dir, desired, desired-r.Current, reason
		return r
	}

	// A node taken out as unhealthy is replaced whatever the metrics and
	// the cooldown say: the pool keeps the size it had. The load may
	// still ask for more.
	if owed := len(ms.Owed); owed > 0 && r.Current < p.Capacity.Max {
		want := min(max(r.Current+owed, floor), p.Capacity.Max)
		if sample.Reporting > 0 && len(over) > 0 {
			want = max(want, min(proportional, p.Capacity.Max))
		}
		r.Replacing = ms.Owed
		return settle(Grow, want, fmt.Sprintf("replacing %d node(s) taken out as unhealthy (%s): growing to %d", owed, strings.Join(ms.Owed, ", "), want))
	}

	// Below the floor: refill, whatever the metrics say.
	if r.Current < floor {
		why := fmt.Sprintf("min %d", p.Capacity.Min)
		if floor > p.Capacity.Min {
			why = fmt.Sprintf("forecast floor %d", in.Floor)
			if in.FloorSource != "" {
				why = fmt.Sprintf("%s floor %d", in.FloorSource, in.Floor)
			}
		}
		want := floor
		switch {
		case sample.Reporting > 0 && len(over) > 0:
			want = max(want, min(proportional, p.Capacity.Max))
		case sample.Reporting == 0 && alarmedOut(in.Signal):
			want = max(want, min(r.Current+p.Capacity.ScaleOutStep, p.Capacity.Max))
		}
		return settle(Grow, want, fmt.Sprintf("%d serving or in flight, below %s: refilling to %d", r.Current, why, want))
	}

	// Growing.
	grow := 0
	var why string
	switch {
	case sample.Reporting > 0 && len(over) > 0:
		grow = proportional - r.Current
		why = fmt.Sprintf("%s: load calls for %d nodes", strings.Join(over, ", "), proportional)
		if in.Refused >= 0.5 {
			why += fmt.Sprintf(" (counting %.0f sessions the dispatcher refused)", in.Refused)
		}
	case sample.Reporting == 0 && alarmedOut(in.Signal):
		// CloudWatch saw the pool overloaded but no node's heartbeat
		// says by how much: step, as a step-scaling policy would.
		grow = p.Capacity.ScaleOutStep
		why = fmt.Sprintf("alarm %s in ALARM and no node reports its load: adding the scale-out step of %d", in.Signal.Alarm, grow)
	}
	if grow > 0 {
		if since := in.Now.Sub(in.LastScaleOut); !in.LastScaleOut.IsZero() && since < p.Cooldowns.ScaleOut.D() {
			then, ok := loadAt(in.Window, in.LastScaleOut)
			was, now := desiredFor(then, targets), desiredFor(sample.Load, targets)
			if !ok || now <= was {
				return settle(Hold, r.Current, fmt.Sprintf("%s; inside scale-out cooldown (last %s ago, window %s)", why, since.Round(time.Second), p.Cooldowns.ScaleOut))
			}
			why += fmt.Sprintf("; inside the scale-out cooldown, but the load rose since the last scale-out %s ago (it called for %d nodes then, %d now)", since.Round(time.Second), was, now)
		}
		if r.Current >= p.Capacity.Max {
			return settle(Hold, r.Current, fmt.Sprintf("%s; the pool is at its max of %d", why, p.Capacity.Max))
		}
		bound := max(p.Capacity.ScaleOutStep, int(math.Ceil(float64(r.Current)*float64(c.MaxGrowthPercent)/100)))
		if grow > bound {
			why += fmt.Sprintf("; growth bounded to %d per decision", bound)
			grow = bound
		}
		desired := min(r.Current+grow, p.Capacity.Max)
		if desired < r.Current+grow {
			why += fmt.Sprintf("; capped at max %d", p.Capacity.Max)
		}
		if inFlight > 0 {
			why += fmt.Sprintf(" (%d in flight counted)", inFlight)
		}
		return settle(Grow, desired, why)
	}

	// Shrinking: every metric, the alarms, the window and the cooldown
	// must agree.
	hold := func(reason string) Recommendation { return settle(Hold, r.Current, reason) }
	switch {
	case r.Current <= floor:
		return hold(fmt.Sprintf("%d serving or in flight, at the floor of %d: holding", r.Current, floor))
	case sample.Reporting == 0:
		return hold(fmt.Sprintf("no node of %d reports its load: holding (missing data never scales in)", r.Current))
	case len(notUnder) > 0:
		return hold(fmt.Sprintf("within target: %s at or near target (tolerance %g%%)", strings.Join(notUnder, ", "), c.TolerancePercent))
	case inFlight > 0:
		return hold(fmt.Sprintf("load is below target but %d node(s) are still on their way in: holding", inFlight))
	}
	for ref, st := range in.AlarmStates {
		if ref.Direction == pool.ScaleOut && st == "ALARM" {
			return hold(fmt.Sprintf("load is below target but the %s scale-out alarm is in ALARM: holding", ref.Metric))
		}
	}
	if since := in.Now.Sub(in.LastScaleIn); !in.LastScaleIn.IsZero() && since < p.Cooldowns.ScaleIn.D() {
		return hold(fmt.Sprintf("load is below target; inside scale-in cooldown (last %s ago, window %s)", since.Round(time.Second), p.Cooldowns.ScaleIn))
	}
	window := c.ScaleInWindow.D()
	start := in.Now.Add(-window)
	if len(in.Window) == 0 || in.Window[0].At.After(start) {
		return hold(fmt.Sprintf("stabilizing: load is below target, and scale-in needs %s of readings first", window))
	}
	peak, peakAt := proportional, in.Now
	for _, s := range in.Window {
		if s.At.Before(start) {
			continue
		}
		if d := desiredFor(s.Load, targets); d > peak {
			peak, peakAt = d, s.At
		}
	}
	bound := max(p.Capacity.ScaleInStep, int(float64(r.Current)*float64(c.MaxShrinkPercent)/100))
	desired := max(peak, floor, r.Current-bound)
	if desired >= r.Current {
		return hold(fmt.Sprintf("stabilizing: the load %s ago called for %d nodes; scale-in waits out its %s window", in.Now.Sub(peakAt).Round(time.Second), peak, window))
	}
	reason := fmt.Sprintf("every metric below target for %s: load calls for %d nodes", window, peak)
	if desired > peak {
		reason += fmt.Sprintf("; removing at most %d per decision, never below %d", bound, floor)
	}
	return settle(Shrink, desired, reason)
}

// Refusals turns the dispatcher's refusals into sessions waiting outside
// the pool: a refused client asks again after retryAfter, so by Little's
// law the clients waiting are the refusal rate times that wait. perSecond
// is the highest recent rate of SessionsRefused.
func Refusals(perSecond float64, retryAfter time.Duration) float64 {
	if perSecond <= 0 {
		return 0
	}
	return perSecond * retryAfter.Seconds()
}

// alarmedOut reports whether a scale-out alarm woke the controller.
func alarmedOut(s Signal) bool { return s.Source == SourceAlarm && s.Direction == pool.ScaleOut }

func round2(f float64) float64 { return math.Round(f*100) / 100 }
