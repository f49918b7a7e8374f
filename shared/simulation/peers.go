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
// details; the controller's replica calculator and its behaviours, in
// kubernetes/kubernetes pkg/controller/podautoscaler): every 15 s the
// replica calculator proposes a raw recommendation from the ready pods'
// metrics (HPAReplicas); the raw recommendation is recorded in the
// stabilization window first; the window then gives the recommendation
// (scale-up: no stabilization; scale-down: the highest raw
// recommendation of the last 300 s), and only then does the rate limit
// apply (scale-up at most max(100 %, 4 pods) per 15 s; scale-down 100 %
// per 15 s), and min and max. A removed pod gets SIGTERM and its grace
// period; the newest pods go first.
type HPA struct {
	p    pool.Pool
	recs []timedRec
	next time.Time
	// sched is a KEDA cron trigger's floor for announced shows: one more
	// metric of the HPA, so the highest recommendation wins.
	sched schedule
}

type timedRec struct {
	at      time.Time
	desired int
}

// HPA's defaults.
const (
	HPATolerance  = 0.1
	HPASyncPeriod = 15 * time.Second
	HPADownWindow = 300 * time.Second
	hpaUpPods     = 4
	hpaUpPercent  = 100
)

func NewHPA(p pool.Pool) *HPA { return &HPA{p: p} }
func (h *HPA) Name() string   { return "hpa" }
func (h *HPA) Shifts() bool   { return false }
func (h *HPA) Step(f *cluster, now time.Time) {
	if now.Before(h.next) {
		return
	}
	h.next = now.Add(HPASyncPeriod)
	current, _ := f.capacity()
	var pods HPAPods
	for _, n := range f.nodes {
		switch n.phase {
		case launching, shifting:
			pods.Pending++
		case active:
			pods.Metrics = append(pods.Metrics, n.sessions)
		}
	}
	raw, ok := HPAReplicas(current, pods, f.target, HPATolerance)
	if !ok {
		// No ready pod reports: the controller records an error and
		// leaves the scale alone.
		return
	}
	raw = max(raw, h.sched.floor(h.p, now))
	desired := HPAStabilize(h.recs, current, raw, now)
	h.recs = append(h.recs, timedRec{now, raw})
	for len(h.recs) > 0 && now.Sub(h.recs[0].at) > HPADownWindow {
		h.recs = h.recs[1:]
	}
	// The rate limits come after stabilization, from the replicas at the
	// start of the 15 s period (the sync period is the policies' period,
	// so that is the current count); scale-down's 100 % a period never
	// binds.
	desired = min(desired, max(current*(100+hpaUpPercent)/100, current+hpaUpPods))
	f.resize(current, min(max(desired, h.p.Capacity.Min), h.p.Capacity.Max), Grace)
}

// HPAPods is what the replica calculator sees of a deployment's pods for
// a per-pod metric.
type HPAPods struct {
	// Metrics holds each ready pod's value.
	Metrics []float64
	// Pending counts pods not yet ready: set aside on a scale-down, read
	// as 0 on a scale-up.
	Pending int
	// Missing counts ready pods without a value: read as the target on a
	// scale-down and as 0 on a scale-up.
	Missing int
}

// HPAReplicas is the replica calculator's raw recommendation for a plain
// per-pod metric (calcPlainMetricReplicas): the usage ratio of the ready
// pods' average to the target; within the tolerance nothing changes;
// without pending or missing pods, ceil(ratio x ready pods); otherwise the
// ratio is taken again with missing pods at the target (scale-down) or 0
// (scale-up) and pending pods at 0 (scale-up only), and nothing changes
// when that lands within the tolerance or turns the direction round. ok is
// false when no ready pod has a value.
func HPAReplicas(current int, pods HPAPods, target, tolerance float64) (replicas int, ok bool) {
	if len(pods.Metrics) == 0 || target <= 0 {
		return current, false
	}
	sum := 0.0
	for _, v := range pods.Metrics {
		sum += v
	}
	n := len(pods.Metrics)
	ratio := sum / float64(n) / target
	rebalance := pods.Pending > 0 && ratio > 1
	if !rebalance && pods.Missing == 0 {
		if math.Abs(1-ratio) <= tolerance {
			return current, true
		}
		return ceilInt(ratio * float64(n)), true
	}
	if pods.Missing > 0 {
		if ratio < 1 {
			sum += float64(pods.Missing) * target
		}
		n += pods.Missing
	}
	if rebalance {
		n += pods.Pending
	}
	fresh := sum / float64(n) / target
	if math.Abs(1-fresh) <= tolerance || ratio < 1 && fresh > 1 || ratio > 1 && fresh < 1 {
		return current, true
	}
	return ceilInt(fresh * float64(n)), true
}

// HPAStabilize is HPA's stabilization with the default behaviours, before
// the raw recommendation is recorded: a scale-up takes the raw
// recommendation at once (a 0 s window); a scale-down takes the highest
// raw recommendation of the last 300 s, never above the current count.
func HPAStabilize(window []timedRec, current, raw int, now time.Time) int {
	down := raw
	for _, r := range window {
		if now.Sub(r.at) <= HPADownWindow {
			down = max(down, r.desired)
		}
	}
	switch {
	case raw > current:
		return raw
	case down < current:
		return down
	}
	return current
}

func ceilInt(v float64) int { return int(math.Ceil(v - 1e-9)) }

// TargetTracking is an EC2 Auto Scaling target tracking policy (EC2 Auto
// Scaling user guide, "Target tracking scaling policies" and "Set the
// default instance warmup"): it keeps a high alarm (3 of 3 one-minute
// datapoints above the target) and a low alarm (15 of 15 below a
// threshold far enough under the target, "usually more than 10 %
// lower": 90 % of it here), whose actions repeat every minute while the
// alarm holds. On the high alarm it asks for ceil(settled x metric /
// target) instances, where settled are the in-service instances past
// their warmup (300 s, the default cooldown standing in for the default
// instance warmup) and the metric their average, and it counts the
// instances still warming up or pending as part of the current capacity:
// it launches only what that ask exceeds, so repeated breaches that need
// similar capacity give one scaling activity. It scales in ("more
// conservative ... to protect availability") only while no instance is
// warming up, to the ask on the whole group, which by rounding up never
// pushes the metric back above the target. EC2 Auto Scaling terminates an
// instance without draining it.
type TargetTracking struct {
	p    pool.Pool
	high *watch
	low  *watch
	next time.Time
	// floor is a forecast's capacity for now (predictive scaling); the
	// policy never goes below it. sched is the scheduled actions of
	// announced shows, which raise the group's minimum size.
	floor int
	sched schedule
}

// Warmup is the instance warmup of EC2 Auto Scaling's target tracking and
// step scaling policies here (the default cooldown, 300 s).
const Warmup = 300 * time.Second

// TargetTrackingScaleIn is the share of the target under which target
// tracking's low alarm watches.
const TargetTrackingScaleIn = 0.9

func NewTargetTracking(p pool.Pool, target float64) *TargetTracking {
	minute := pool.Duration(time.Minute)
	return &TargetTracking{p: p,
		high: newWatch("tt-high", pool.AlarmSpec{Threshold: target, Period: minute, EvaluationPeriods: 3, Comparison: "GreaterThanThreshold", TreatMissingData: "missing"}),
		low:  newWatch("tt-low", pool.AlarmSpec{Threshold: TargetTrackingScaleIn * target, Period: minute, EvaluationPeriods: 15, Comparison: "LessThanThreshold", TreatMissingData: "missing"}),
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
	current, _ := f.capacity()
	settled, metric := f.settled()
	desired := current
	switch {
	case tt.high.def.State == alarm.Alarm && settled > 0:
		desired = max(current, TargetTrackingDesired(settled, metric, f.target))
	case tt.high.def.State == alarm.Alarm:
		desired = max(current, 1)
	case tt.low.def.State == alarm.Alarm && settled == current:
		desired = TargetTrackingDesired(current, metric, f.target)
	}
	f.resize(current, min(max(desired, tt.p.Capacity.Min, tt.floor, tt.sched.floor(tt.p, now)), tt.p.Capacity.Max), Terminate)
}

// settled counts the ACTIVE nodes past EC2 Auto Scaling's instance warmup
// and gives their average sessions: the instances whose metrics the
// group's aggregate holds.
func (f *cluster) settled() (n int, avg float64) {
	sum := 0.0
	for _, x := range f.nodes {
		if x.phase == active && f.now-x.activeAt >= Warmup {
			n++
			sum += x.sessions
		}
	}
	if n == 0 {
		return 0, 0
	}
	return n, sum / float64(n)
}

// TargetTrackingDesired is the capacity target tracking asks for: the
// metric back at its target, rounded up ("adding 1.5 instances ... we
// round up and add two").
func TargetTrackingDesired(inService int, metric, target float64) int {
	return ceilInt(float64(inService) * metric / target)
}

// StepScaling is an EC2 Auto Scaling step scaling policy on the pool's
// own alarms (EC2 Auto Scaling user guide, "Step and simple scaling
// policies" and "Set the default instance warmup"): while the scale-out
// alarm is in ALARM its action repeats every minute, even while an
// earlier activity is in progress, and sets the capacity to the settled
// instances (in service and past their warmup) plus the pool's scale-out
// step; instances still warming up or pending count as part of the
// current capacity, so a breach in the same step while they warm up adds
// nothing more. The scale-in alarm removes the scale-in step, at most once
// per the pool's scale-in cooldown and only while no instance warms up.
// Instances are terminated without draining.
type StepScaling struct {
	p      pool.Pool
	out    *watch
	in     *watch
	next   time.Time
	lastIn time.Time
	// sched is the scheduled actions of announced shows: the group's
	// minimum size while each runs.
	sched schedule
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
	settled, _ := f.settled()
	least := max(s.p.Capacity.Min, s.sched.floor(s.p, now))
	switch {
	case current < least:
		f.resize(current, least, Terminate)
	case s.out.def.State == alarm.Alarm:
		f.resize(current, min(max(current, settled+s.p.Capacity.ScaleOutStep), s.p.Capacity.Max), Terminate)
	case s.in.def.State == alarm.Alarm && settled == current && current > least && now.Sub(s.lastIn) >= s.p.Cooldowns.ScaleIn.D():
		f.resize(current, max(current-s.p.Capacity.ScaleInStep, least), Terminate)
		s.lastIn = now
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
// it. No policy can do better under the same model; the gap to it is
// what a policy leaves on the table.
//
// The first-sign bound is the limit without foresight: it knows nothing
// until the demand first stands 10 % above where the trace started, and
// from that moment knows everything and sizes as the oracle does, paying
// the same launch lead. No policy that waits for the crowd to show itself
// can under-provision less; what lies between it and the oracle is what
// only knowing the show in advance buys.
type Oracle struct {
	p    pool.Pool
	need []int
	step time.Duration
	// blind is the steps before the first sign (0 for the oracle): the
	// policy holds its starting size through them.
	blind int
	name  string
}

// FirstSign is how far above its start the demand must rise before the
// first-sign bound knows of it.
const FirstSign = 1.10

// The oracle's and the first-sign bound's names, which Judge recognizes.
const (
	OracleName    = "oracle"
	FirstSignName = "first-sign"
)

// NewOracle returns the oracle, or with firstSign the first-sign bound.
func NewOracle(p pool.Pool, m Model, t Trace, firstSign bool) *Oracle {
	step := m.Step.D()
	n := int(t.Duration()/step) + 1
	o := &Oracle{p: p, need: make([]int, n), step: step, name: OracleName}
	cur := cursor{t: t}
	start := cur.at(0)
	if firstSign {
		o.name, o.blind = FirstSignName, n
	}
	for i := range o.need {
		demand := cur.at(time.Duration(i) * step)
		if firstSign && o.blind == n && demand > FirstSign*start {
			o.blind = i
		}
		o.need[i] = max(capacity.NodesFor(p, demand), min(p.Capacity.Min, p.Capacity.Max))
	}
	return o
}

func (o *Oracle) Name() string { return o.name }
func (o *Oracle) Shifts() bool { return false }
func (o *Oracle) Step(f *cluster, now time.Time) {
	i := int(now.Sub(Epoch) / o.step)
	if i < o.blind {
		return
	}
	ahead := int((f.m.coldLead(o.p)+f.m.HealthCheck.D())/o.step) + 1
	want := 0
	for j := i; j <= i+ahead && j < len(o.need); j++ {
		want = max(want, o.need[j])
	}
	current, _ := f.capacity()
	f.resize(current, want, Drain)
}
