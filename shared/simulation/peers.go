package simulation

import (
	"math"
	"time"

	"github.com/mediascale/mediascale/shared/alarm"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// Each peer below is built from its published rules, cited where they are
// applied; all of them scale on sessions per node against the same target
// mediascale uses, launch through the same model and keep the same warm
// pool, so only the decisions differ.

// HPA is the Kubernetes Horizontal Pod Autoscaler v2 with its defaults
// (Kubernetes docs, "Horizontal Pod Autoscaling" and its algorithm
// details): every 15 s, desired = ceil(current x metric / target); no
// change within a 0.1 tolerance; pods not yet ready count as 0 % of the
// target when scaling up and as 100 % when scaling down; scale-up at most
// max(100 %, 4 pods) per 15 s and no stabilization; scale-down takes the
// highest recommendation of the last 300 s. A removed pod gets SIGTERM and
// its grace period.
type HPA struct {
	p    pool.Pool
	recs []timedRec
	next time.Time
}

type timedRec struct {
	at      time.Time
	desired int
}

func NewHPA(p pool.Pool) *HPA { return &HPA{p: p} }
func (h *HPA) Name() string   { return "hpa" }
func (h *HPA) Shifts() bool   { return false }
func (h *HPA) Step(f *cluster, now time.Time) {
	if now.Before(h.next) {
		return
	}
	h.next = now.Add(15 * time.Second)
	current, ready := f.capacity()
	load := f.perWeight() * float64(ready)
	desired := HPADesired(current, ready, load, f.target)
	// Scale-down stabilization: the highest recommendation of 300 s.
	h.recs = append(h.recs, timedRec{now, desired})
	for len(h.recs) > 0 && now.Sub(h.recs[0].at) > 300*time.Second {
		h.recs = h.recs[1:]
	}
	if desired < current {
		for _, r := range h.recs {
			desired = max(desired, r.desired)
		}
		desired = min(desired, current)
	}
	f.resize(current, min(max(desired, h.p.Capacity.Min), h.p.Capacity.Max), Grace)
}

// HPADesired is one HPA recommendation before stabilization and bounds:
// load is the sessions on the ready pods.
func HPADesired(current, ready int, load, target float64) int {
	if current == 0 {
		if load > 0 {
			return 1
		}
		return 0
	}
	// Scale-up reads unready pods as 0 % of the target.
	up := load / (float64(current) * target)
	if up > 1.1 {
		limit := max(2*current, current+4)
		return min(int(math.Ceil(float64(current)*up-1e-9)), limit)
	}
	// Scale-down reads unready pods as 100 % of the target.
	down := (load + float64(current-ready)*target) / (float64(current) * target)
	if down < 0.9 {
		return int(math.Ceil(float64(current)*down - 1e-9))
	}
	return current
}

// TargetTracking is an EC2 Auto Scaling target tracking policy (EC2 Auto
// Scaling user guide, "Target tracking scaling policies"): it keeps a high
// alarm (3 of 3 one-minute datapoints above the target) and a low alarm
// (15 of 15 below it), whose actions repeat every minute while the alarm
// holds; on either it sets capacity to ceil(in-service x metric /
// target), rounding up. Instances still warming up (the default warmup is
// 300 s once in service) count toward the current capacity and their
// metrics are left out; it scales in only when no instance is warming.
// EC2 Auto Scaling terminates an instance without draining it.
type TargetTracking struct {
	p        pool.Pool
	high     *watch
	low      *watch
	next     time.Time
	inServed map[int]time.Time
	// floor is a forecast's capacity for now (predictive scaling); the
	// policy never goes below it.
	floor int
}

// Warmup is target tracking's default instance warmup.
const Warmup = 300 * time.Second

func NewTargetTracking(p pool.Pool, target float64) *TargetTracking {
	minute := pool.Duration(time.Minute)
	return &TargetTracking{p: p,
		high:     newWatch("tt-high", pool.AlarmSpec{Threshold: target, Period: minute, EvaluationPeriods: 3, Comparison: "GreaterThanThreshold", TreatMissingData: "missing"}),
		low:      newWatch("tt-low", pool.AlarmSpec{Threshold: target, Period: minute, EvaluationPeriods: 15, Comparison: "LessThanThreshold", TreatMissingData: "missing"}),
		inServed: map[int]time.Time{},
	}
}

func (tt *TargetTracking) Name() string { return "target-tracking" }
func (tt *TargetTracking) Shifts() bool { return false }
func (tt *TargetTracking) Step(f *cluster, now time.Time) {
	tt.high.evaluate(f, now)
	tt.low.evaluate(f, now)
	if now.Before(tt.next) {
		return
	}
	tt.next = now.Add(time.Minute)
	current, ready := f.capacity()
	warming := current - ready
	for _, n := range f.nodes {
		if n.phase == active {
			if _, ok := tt.inServed[n.id]; !ok {
				tt.inServed[n.id] = now
			}
			if now.Sub(tt.inServed[n.id]) < Warmup {
				warming++
			}
		}
	}
	metric := f.perWeight()
	settled := current - warming
	desired := current
	switch {
	case tt.high.def.State == alarm.Alarm && settled > 0:
		desired = max(current, TargetTrackingDesired(settled, metric, f.target)+warming)
	case tt.high.def.State == alarm.Alarm:
		desired = max(current, 1)
	case tt.low.def.State == alarm.Alarm && warming == 0:
		desired = TargetTrackingDesired(current, metric, f.target)
	}
	f.resize(current, min(max(desired, tt.p.Capacity.Min, tt.floor), tt.p.Capacity.Max), Terminate)
}

// TargetTrackingDesired is the capacity target tracking asks for: the
// metric back at its target, rounded up ("adding 1.5 instances ... we
// round up and add two").
func TargetTrackingDesired(inService int, metric, target float64) int {
	return int(math.Ceil(float64(inService)*metric/target - 1e-9))
}

// StepScaling is an EC2 Auto Scaling step scaling policy on the pool's
// own alarms (EC2 Auto Scaling user guide, "Step and simple scaling
// policies"): while the scale-out alarm is in ALARM its action repeats
// every minute and adds the pool's scale-out step, even while an earlier
// activity is in progress; the scale-in alarm removes the scale-in step,
// at most once per the pool's scale-in cooldown. Instances are terminated
// without draining.
type StepScaling struct {
	p      pool.Pool
	out    *watch
	in     *watch
	next   time.Time
	lastIn time.Time
}

func NewStepScaling(p pool.Pool) *StepScaling {
	return &StepScaling{p: p,
		out: newWatch("step-out", p.Alarm(pool.ScaleOut, pool.MetricConnections)),
		in:  newWatch("step-in", p.Alarm(pool.ScaleIn, pool.MetricConnections))}
}

func (s *StepScaling) Name() string { return "step-scaling" }
func (s *StepScaling) Shifts() bool { return false }
func (s *StepScaling) Step(f *cluster, now time.Time) {
	s.out.evaluate(f, now)
	s.in.evaluate(f, now)
	if now.Before(s.next) {
		return
	}
	s.next = now.Add(time.Minute)
	current, _ := f.capacity()
	switch {
	case s.out.def.State == alarm.Alarm && current < s.p.Capacity.Max:
		f.launch(min(s.p.Capacity.ScaleOutStep, s.p.Capacity.Max-current), 0)
		f.fig.executions++
	case s.in.def.State == alarm.Alarm && current > s.p.Capacity.Min && now.Sub(s.lastIn) >= s.p.Cooldowns.ScaleIn.D():
		f.remove(min(s.p.Capacity.ScaleInStep, current-s.p.Capacity.Min), Terminate, 0)
		s.lastIn = now
		f.fig.executions++
	case current < s.p.Capacity.Min:
		f.launch(s.p.Capacity.Min-current, 0)
		f.fig.executions++
	}
}

// Edge is mediascale before its controller, kept as the baseline: the
// workflow (shift steps, drains) started only on an alarm's move into
// ALARM, as EventBridge delivers it once per transition, adding or
// removing the pool's fixed step outside its cooldowns; an alarm that
// stays in ALARM is never looked at again.
type Edge struct {
	p       pool.Pool
	out     *watch
	in      *watch
	lastOut time.Time
	lastIn  time.Time
	running int
	nextRun int
}

func NewEdge(p pool.Pool) *Edge {
	return &Edge{p: p,
		out: newWatch("edge-out", p.Alarm(pool.ScaleOut, pool.MetricConnections)),
		in:  newWatch("edge-in", p.Alarm(pool.ScaleIn, pool.MetricConnections))}
}

func (e *Edge) Name() string { return "edge-fixed-step" }
func (e *Edge) Shifts() bool { return true }
func (e *Edge) Step(f *cluster, now time.Time) {
	out, in := e.out.evaluate(f, now), e.in.evaluate(f, now)
	current, _ := f.capacity()
	if current < e.p.Capacity.Min && (e.running == 0 || !f.busy(e.running)) {
		e.start(f)
		f.launch(e.p.Capacity.Min-current, e.running)
		return
	}
	if e.running != 0 && f.busy(e.running) {
		return
	}
	switch {
	case out && now.Sub(e.lastOut) >= e.p.Cooldowns.ScaleOut.D() && current < e.p.Capacity.Max:
		e.start(f)
		f.launch(min(e.p.Capacity.ScaleOutStep, e.p.Capacity.Max-current), e.running)
		e.lastOut = now
	case in && now.Sub(e.lastIn) >= e.p.Cooldowns.ScaleIn.D() && current > e.p.Capacity.Min:
		e.start(f)
		f.remove(min(e.p.Capacity.ScaleInStep, current-e.p.Capacity.Min), Drain, e.running)
		e.lastIn = now
	}
}

func (e *Edge) start(f *cluster) {
	e.nextRun++
	e.running = e.nextRun
	f.fig.executions++
}

// Oracle knows the whole trace and is bound only by the time a node takes
// to serve: it launches each node one cold lead time before the demand
// needs it and removes a node once no demand within that lead time needs
// it. No policy can do better under the same model; the gap to it
// is what a policy leaves on the table.
//
// With foresight off it is the ideal reactive policy: it sees each
// moment's demand the moment it arrives, decides at once, sizes exactly
// to it, and launches through the same warm pool and lead times. No policy
// that sizes the pool to the demand of the moment can under-provision
// less, whatever its alarms, periods or growth bounds; to do better a
// policy must guess at demand still to come and pay for the guess in
// node-hours. What is left between it and the oracle is the launch lead
// itself, which only foresight or a larger warm pool buys.
type Oracle struct {
	p         pool.Pool
	need      []int
	step      time.Duration
	foresight bool
}

// NewOracle returns the oracle, or with foresight false the ideal
// reactive policy.
func NewOracle(p pool.Pool, m Model, t Trace, foresight bool) *Oracle {
	target := capacity.Targets(p)[pool.MetricConnections]
	step := m.Step.D()
	n := int(t.Duration()/step) + 1
	need := make([]int, n)
	cur := cursor{t: t}
	for i := range need {
		d := 0
		if target > 0 {
			d = int(math.Ceil(cur.at(time.Duration(i)*step)/target - 1e-9))
		}
		need[i] = min(max(d, p.Capacity.Min), p.Capacity.Max)
	}
	return &Oracle{p: p, need: need, step: step, foresight: foresight}
}

// The oracle's and the ideal reactive policy's names, which Judge
// recognizes.
const (
	OracleName        = "oracle"
	IdealReactiveName = "ideal-reactive"
)

func (o *Oracle) Name() string {
	if o.foresight {
		return OracleName
	}
	return IdealReactiveName
}

func (o *Oracle) Shifts() bool { return false }
func (o *Oracle) Step(f *cluster, now time.Time) {
	i := int(now.Sub(Epoch) / o.step)
	ahead := 0
	if o.foresight {
		ahead = int((f.m.coldLead(o.p)+f.m.HealthCheck.D())/o.step) + 1
	}
	want := 0
	for j := i; j <= i+ahead && j < len(o.need); j++ {
		want = max(want, o.need[j])
	}
	current, _ := f.capacity()
	f.resize(current, want, Drain)
}
