package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// dedupeTTL is how long a seen state change is remembered. EventBridge
// retries for up to 24 hours, so a shorter memory could let a retry through.
const dedupeTTL = 48 * time.Hour

// Lock leases. A scale-in owns its pool until it ends: its drain checks
// renew fleet.ScaleInLease while they run, the workflow releases the lock
// on every path, and one that died frees the pool when the lease runs out.
// A scale-out owns the pool only until its plan has written its nodes (the
// plan hands the lock back), so its lease covers the start and one plan.
const (
	scaleInLease  = fleet.ScaleInLease
	scaleOutLease = 15 * time.Minute
)

// Store is what the trigger needs from the node table.
type Store interface {
	MarkOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Unmark(ctx context.Context, key string) error
	LastScaled(ctx context.Context, pool, direction string) (time.Time, bool, error)
	MarkScaled(ctx context.Context, pool, direction string, at time.Time, execution string) error
	GetLock(ctx context.Context, pool string) (fleet.Lease, bool, error)
	CancelDrains(ctx context.Context, pool, execution, by string) error
	Status(ctx context.Context, pool string) (fleet.PoolStatus, error)
	AcquireLock(ctx context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error)
	ReleaseLock(ctx context.Context, pool, owner string) (bool, error)
	ClaimLoop(ctx context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error)
	RenewLoop(ctx context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error)
	EndLoop(ctx context.Context, pool, owner string) (bool, error)
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
	Window(ctx context.Context, pool string) ([]fleet.Sample, error)
	Forecast(ctx context.Context, pool string) (fleet.Forecast, bool, error)
	Shows(ctx context.Context, pool string) ([]fleet.Show, error)
	MarkReplaced(ctx context.Context, pool, id, execution string) error
	RecordSample(ctx context.Context, pool string, prior []fleet.Sample, s fleet.Sample, keep time.Duration, d fleet.Decision) error
	LastDecision(ctx context.Context, pool string) (fleet.Decision, bool, error)
}

// Executions is the part of the Step Functions client the trigger uses.
type Executions interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

// Alarms is the part of the CloudWatch client the trigger uses: the states
// of a pool's scaling alarms and the dispatcher's refusals are inputs of
// every decision.
type Alarms interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// Handler is the trigger Lambda's handler.
type Handler struct {
	config pool.File
	// origin is the account and region the function runs in: events
	// from any other are refused.
	origin   events.Origin
	index    map[string]pool.AlarmRef
	store    Store
	sfn      Executions
	alarms   Alarms
	machines map[pool.Direction]string
	// loop is the pressure loops' state machine ("" for none).
	loop string
	now  func() time.Time
	log  *slog.Logger
}

// NewHandler builds a handler over a validated configuration, for the
// account and region it runs in. machines maps a direction to the ARN of
// the state machine that scales that way.
func NewHandler(cfg pool.File, origin events.Origin, store Store, sfn Executions, alarms Alarms, machines map[pool.Direction]string, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{config: cfg, origin: origin, index: cfg.AlarmIndex(), store: store, sfn: sfn, alarms: alarms, machines: machines, now: now, log: log}
}

// Handle takes the raw event so that a malformed one is an InvalidInput
// error with a readable message rather than the runtime's decode error. It
// writes nothing before the event has been validated and routed.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Decision, error) {
	return invocation.Handler("trigger", h.log, h.now, h.handle)(ctx, raw)
}

// LogAttrs puts the decision in the invocation's log line.
func (d Decision) LogAttrs() []any {
	attrs := []any{"pool", d.Pool, "alarm", d.Alarm, "direction", d.Direction, "action", d.Action, "reason", d.Reason, "execution", d.Execution}
	if r := d.Recommendation; r != nil {
		attrs = append(attrs, "current", r.Current, "desired", r.Desired, "inFlight", r.InFlight, "reporting", r.Reporting, "metrics", r.Metrics)
	}
	if d.PressureLoop != "" {
		attrs = append(attrs, "pressureLoop", d.PressureLoop)
	}
	if p := d.Pressure; p != nil {
		attrs = append(attrs, "round", p.Round, "continue", p.Continue)
	}
	return attrs
}

func (h *Handler) handle(ctx context.Context, raw json.RawMessage) (Decision, error) {
	// A pressure round is the input of this environment's own state
	// machine; every other event names where it comes from.
	if !events.IsPressureRound(raw) {
		if err := h.origin.Admit(raw); err != nil {
			return Decision{}, err
		}
	}
	switch {
	case events.IsOperatorEvent(raw):
		return h.operator(ctx, raw)
	case events.IsScheduleEvent(raw):
		return h.tick(ctx)
	case events.IsPressureRound(raw):
		return h.round(ctx, raw)
	}
	ev, err := events.ParseAlarmEvent(raw)
	if err != nil {
		return Decision{}, err
	}
	if err := events.CheckAlarmTime(ev, h.now()); err != nil {
		return Decision{Alarm: ev.Detail.AlarmName}, err
	}
	ref, p, err := Route(ev, h.config, h.index)
	if err != nil {
		return Decision{Alarm: ev.Detail.AlarmName}, err
	}
	d := Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name, Direction: ref.Direction, Action: ActionIgnore}
	switch ev.Detail.State.Value {
	case events.AlarmStateAlarm:
	case events.AlarmStateInsufficientData:
		d.Reason = "metrics missing (INSUFFICIENT_DATA): the pool holds its current capacity"
		return d, nil
	default:
		d.Reason = fmt.Sprintf("alarm moved to %s, not ALARM: the schedule keeps watching the pool", ev.Detail.State.Value)
		return d, nil
	}
	first, err := h.store.MarkOnce(ctx, DedupeKey(ev), dedupeTTL)
	if err != nil {
		return d, fmt.Errorf("checking for a duplicate event: %w", err)
	}
	if !first {
		d.Reason = fmt.Sprintf("duplicate: state change of %s at %s was already handled", ev.Detail.AlarmName, ev.Detail.State.Timestamp)
		return d, nil
	}
	sig := capacity.Signal{Source: capacity.SourceAlarm, Alarm: ev.Detail.AlarmName, Direction: ref.Direction, Metric: ref.Metric}
	d, err = h.control(ctx, p, sig, ev.Detail.State.At)
	if err != nil {
		// The mark stands only with the decision's effect: without it a
		// redelivery (Lambda retries a failed asynchronous invocation
		// twice) acts on the state change instead of calling it a
		// duplicate. The execution's name still keeps a start that did
		// happen from happening twice.
		if uerr := h.store.Unmark(ctx, DedupeKey(ev)); uerr != nil {
			h.log.ErrorContext(ctx, "the dedupe mark of a failed decision stays; the next controller tick acts on the pool", "alarm", ev.Detail.AlarmName, "error", uerr.Error())
		}
	}
	return d, err
}

// tick runs the controller over every pool: the schedule is what keeps an
// overloaded pool growing and refills one below min when no alarm moves.
// Every pool's recommendation is made first, so the environment's budget
// is shared among them by priority before any acts. One pool's failure
// does not keep the others from their decision.
func (h *Handler) tick(ctx context.Context) (Decision, error) {
	now := h.now()
	out := Decision{Action: ActionIgnore, Alarm: "schedule", Reason: fmt.Sprintf("controller tick over %d pools", len(h.config.Pools))}
	sig := capacity.Signal{Source: capacity.SourceSchedule}
	release, held := h.lockBudget(ctx)
	if held != "" {
		out.Reason = held
		return out, nil
	}
	defer release()
	assessed := make([]assessment, len(h.config.Pools))
	var claims []capacity.Claim
	for i, p := range h.config.Pools {
		assessed[i] = h.assess(ctx, p, sig)
		if a := assessed[i]; a.err == nil {
			claims = append(claims, h.claim(ctx, a))
		}
	}
	shares := h.share(claims)
	var errs []error
	for _, a := range assessed {
		d, err := a.decision, a.err
		if err == nil {
			d, err = h.act(ctx, a, shares, sig, now)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", a.pool.Name, err))
			d.Reason = "error: " + err.Error()
		}
		if d.Action == ActionScale {
			out.Action = ActionScale
		}
		out.Pools = append(out.Pools, d)
	}
	return out, errors.Join(errs...)
}

// assessment is one pool's state and recommendation before it acts.
type assessment struct {
	pool     pool.Pool
	decision Decision
	paused   bool
	rec      capacity.Recommendation
	// in is what the controller read: the pool's nodes and window.
	in  capacity.Inputs
	err error
}

// assess reads the pool's status and asks the controller; it writes
// nothing.
func (h *Handler) assess(ctx context.Context, p pool.Pool, sig capacity.Signal) assessment {
	a := assessment{pool: p, decision: Decision{Alarm: sig.Alarm, Pool: p.Name, Direction: sig.Direction, Action: ActionIgnore}}
	if a.decision.Alarm == "" {
		a.decision.Alarm = sig.Source
	}
	status, err := h.store.Status(ctx, p.Name)
	if err != nil {
		a.err = fmt.Errorf("reading pool status: %w", err)
		return a
	}
	if status.Paused {
		a.paused = true
		a.decision.Reason = fmt.Sprintf("pool paused by %s since %s: %s", status.Operator, status.Since.Format(time.RFC3339), status.Reason)
	}
	a.rec, a.in, a.err = h.recommend(ctx, p, sig)
	return a
}

// control asks the controller for one pool's capacity and starts the
// execution for the difference. at is the signal's time: the alarm's state
// change, or the tick's time, from which the execution's name derives.
func (h *Handler) control(ctx context.Context, p pool.Pool, sig capacity.Signal, at time.Time) (Decision, error) {
	a := h.assess(ctx, p, sig)
	if a.err != nil {
		return a.decision, a.err
	}
	var shares map[string]capacity.Share
	if h.config.Budget != nil && !a.paused {
		release, held := h.lockBudget(ctx)
		if held != "" {
			a.decision.Reason = held
			return a.decision, nil
		}
		defer release()
		others, err := h.othersClaims(ctx, p)
		if err != nil {
			return a.decision, err
		}
		shares = h.share(append(others, h.claim(ctx, a)))
	}
	return h.act(ctx, a, shares, sig, at)
}

// act records the pool's decision, within its share of the budget, and
// starts the execution for the difference.
func (h *Handler) act(ctx context.Context, a assessment, shares map[string]capacity.Share, sig capacity.Signal, at time.Time) (Decision, error) {
	d, p := a.decision, a.pool
	if a.paused {
		return d, nil
	}
	rec := a.rec
	if s, ok := shares[p.Name]; ok {
		rec = capacity.Within(rec, s)
	}
	d.Recommendation, d.Reason = &rec, rec.Reason
	h.record(ctx, p, a.in.Window, rec)
	h.publish(ctx, rec)
	d, err := h.start(ctx, d, p, rec, sig, at)
	if err == nil {
		h.pressureLoop(ctx, &d, p, rec, sig)
	}
	return d, err
}

// start starts the execution a recommendation calls for, if any.
func (h *Handler) start(ctx context.Context, d Decision, p pool.Pool, rec capacity.Recommendation, sig capacity.Signal, at time.Time) (Decision, error) {
	warmOnly := false
	switch {
	case rec.Direction == capacity.Grow:
		d.Direction = pool.ScaleOut
	case rec.Direction == capacity.Shrink:
		d.Direction = pool.ScaleIn
	case rec.Warm.Needed() && sig.Source == capacity.SourceSchedule:
		// The warm pool's upkeep rides on the scale-out workflow, but
		// adds no serving capacity: no cooldown, no cancelled drains.
		// Only the schedule starts it: it is never urgent (every
		// scale-out's plan refills the warm pool too), and an alarm in
		// the same second as a scale-out must not start a second run.
		d.Direction, warmOnly = pool.ScaleOut, true
		d.Reason = rec.Reason + "; " + rec.Warm.String()
	default:
		return d, nil
	}
	ref := pool.AlarmRef{Pool: p.Name, Direction: d.Direction}
	d.Action, d.Execution = ActionScale, ExecutionName(ref, d.Alarm, at)
	req := events.ScaleRequest{
		Pool: p.Name, Direction: string(d.Direction), Execution: d.Execution, Alarm: d.Alarm, Reason: d.Reason, RequestedAt: at.UTC(),
		WarmOnly: warmOnly,
	}
	if rec.Warm.Want > p.Capacity.WarmPool {
		req.WarmWant = rec.Warm.Want
	}
	switch {
	case warmOnly:
	case d.Direction == pool.ScaleOut:
		req.Desired = rec.Desired
	default:
		req.Count = -rec.Change
	}
	d, err := h.startRequest(ctx, d, req, func(ctx context.Context) (string, error) { return h.changed(ctx, p, rec) })
	if err == nil && d.ExecutionARN != "" && d.Direction == pool.ScaleOut {
		// The replacement is on its way: the unhealthy nodes are no
		// longer owed. A mark that fails costs one node more at the
		// next decision, which the load later gives back.
		for _, id := range rec.Replacing {
			if merr := h.store.MarkReplaced(ctx, p.Name, id, d.Execution); merr != nil {
				h.log.ErrorContext(ctx, "an unhealthy node's replacement started but is still marked owed", "pool", p.Name, "node", id, "error", merr.Error())
			}
		}
	}
	return d, err
}

// recommend reads everything the controller needs and decides; it also
// returns what it read (the nodes, the load window). It writes nothing, so an operator's dry
// run changes nothing.
func (h *Handler) recommend(ctx context.Context, p pool.Pool, sig capacity.Signal) (capacity.Recommendation, capacity.Inputs, error) {
	in := capacity.Inputs{Pool: p, Signal: sig, Now: h.now()}
	var err error
	if in.Nodes, err = h.store.ListNodes(ctx, p.Name); err != nil {
		return capacity.Recommendation{}, in, err
	}
	if in.Window, err = h.store.Window(ctx, p.Name); err != nil {
		return capacity.Recommendation{}, in, err
	}
	if in.LastScaleOut, _, err = h.store.LastScaled(ctx, p.Name, string(pool.ScaleOut)); err != nil {
		return capacity.Recommendation{}, in, fmt.Errorf("reading the scale-out cooldown: %w", err)
	}
	if in.LastScaleIn, _, err = h.store.LastScaled(ctx, p.Name, string(pool.ScaleIn)); err != nil {
		return capacity.Recommendation{}, in, fmt.Errorf("reading the scale-in cooldown: %w", err)
	}
	if in.AlarmStates, err = h.alarmStates(ctx, p); err != nil {
		return capacity.Recommendation{}, in, err
	}
	// A forecast that cannot be read raises no floor: the reactive
	// controller is the backstop, and it must not wait on the forecast.
	fc, ok, ferr := h.store.Forecast(ctx, p.Name)
	switch {
	case ferr != nil:
		h.log.WarnContext(ctx, "forecast not read; deciding without its floor", "pool", p.Name, "error", ferr.Error())
	case ok:
		var why string
		if in.Floor, why = capacity.ForecastFloor(p, fc, in.Window, in.Now); why != "" {
			h.log.InfoContext(ctx, "forecast floor", "pool", p.Name, "floor", in.Floor, "reason", why)
		}
	}
	// Shows raise the floor one lead time ahead: the pool's measured
	// lead, from its forecast, or the fallback before it has one. Shows
	// that cannot be read raise none, as a forecast.
	lead := p.FallbackLead()
	if ok && fc.Lead() > 0 {
		lead = fc.Lead()
	}
	announced, serr := h.store.Shows(ctx, p.Name)
	if serr != nil {
		h.log.WarnContext(ctx, "announced shows not read; deciding with the pool file's alone", "pool", p.Name, "error", serr.Error())
	}
	shows := capacity.Shows(p, announced, in.Now)
	warm := capacity.WarmStart{Ready: capacity.WarmReady(p, in.Nodes), Current: capacity.Measure(p, in.Nodes, in.Now).Sample.Capacity, Lead: p.WarmLead()}
	if floor, by, why := capacity.ShowFloor(p, shows, in.Window, in.Now, lead, warm); why != "" {
		h.log.InfoContext(ctx, "show floor", "pool", p.Name, "floor", floor, "reason", why)
		if floor > in.Floor {
			in.Floor, in.FloorSource = floor, by
		}
	}
	// What the forecast and the shows will ask for one lead time on: the
	// warm pool fills for it now, so their floor's nodes start in seconds.
	later := in.Now.Add(lead)
	in.Ahead, _, _ = capacity.ShowFloor(p, shows, in.Window, later, lead, capacity.WarmStart{})
	if ok {
		fl, _ := capacity.ForecastFloor(p, fc, in.Window, later)
		in.Ahead = max(in.Ahead, fl)
	}
	// Refusals, like the forecast, only add to what the nodes report: a
	// decision must not wait on them.
	if perSecond, rerr := h.refusedPerSecond(ctx, p, in.Now); rerr != nil {
		h.log.WarnContext(ctx, "dispatcher refusals not read; deciding on the nodes' load alone", "pool", p.Name, "error", rerr.Error())
	} else {
		in.Refused = capacity.Refusals(perSecond, p.RetryAfter())
	}
	return capacity.Recommend(in), in, nil
}

// refusalLookback is how far back the trigger looks for the dispatcher's
// refusals, and refusalPeriod the datapoints it reads: the dispatcher
// stores them at one-second resolution, and embedded metrics reach
// CloudWatch within seconds to a minute.
const (
	refusalLookback = 2 * time.Minute
	refusalPeriod   = 10 * time.Second
)

// refusedPerSecond is the highest rate at which the dispatcher refused the
// pool's sessions (every class) in any ten seconds of the lookback. The
// ten seconds still running count over the part of them that has passed
// (at least minRefusalSpan).
func (h *Handler) refusedPerSecond(ctx context.Context, p pool.Pool, now time.Time) (float64, error) {
	end := now.Truncate(refusalPeriod).Add(refusalPeriod)
	out, err := h.alarms.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(end.Add(-refusalLookback)), EndTime: aws.Time(end),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("refused"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(telemetry.Namespace), MetricName: aws.String(telemetry.SessionsRefused),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String(p.Name)}}},
			Period: aws.Int32(int32(refusalPeriod.Seconds())), Stat: aws.String("Sum"),
		}}},
	})
	if err != nil {
		return 0, fmt.Errorf("reading %s of pool %s: %w", telemetry.SessionsRefused, p.Name, err)
	}
	most := 0.0
	for _, r := range out.MetricDataResults {
		for i, v := range r.Values {
			span := refusalPeriod
			if i < len(r.Timestamps) {
				span = min(max(now.Sub(r.Timestamps[i]), minRefusalSpan), refusalPeriod)
			}
			most = max(most, v/span.Seconds())
		}
	}
	return most, nil
}

// minRefusalSpan keeps the first seconds of a period, and the clock skew
// between the dispatcher and the trigger, from blowing one refusal up
// into a rate.
const minRefusalSpan = 5 * time.Second

// record keeps the load a decision read in the pool's window, and the
// decision beside it. The window must reach back past the stabilization
// window, so the oldest sample proves it is covered.
func (h *Handler) record(ctx context.Context, p pool.Pool, window []fleet.Sample, rec capacity.Recommendation) {
	keep := capacity.WindowKeep(p)
	decision := fleet.Decision{Direction: rec.Direction, Current: rec.Current, Desired: rec.Desired, Reason: rec.Reason}
	if err := h.store.RecordSample(ctx, p.Name, window, rec.Sample, keep, decision); err != nil {
		h.log.WarnContext(ctx, "the load sample was not recorded; the next decision records its own", "pool", p.Name, "error", err.Error())
	}
}

// alarmStates reads the states of the pool's scaling alarms in one call.
func (h *Handler) alarmStates(ctx context.Context, p pool.Pool) (map[pool.AlarmRef]string, error) {
	prefix := pool.AlarmPrefix(h.config.Environment, p.Name)
	states := map[pool.AlarmRef]string{}
	pages := cloudwatch.NewDescribeAlarmsPaginator(h.alarms, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the scaling alarms of pool %s: %w", p.Name, err)
		}
		for _, a := range page.MetricAlarms {
			if ref, ok := h.index[aws.ToString(a.AlarmName)]; ok && ref.Pool == p.Name {
				states[ref] = string(a.StateValue)
			}
		}
	}
	return states, nil
}

// publish writes the decision as metrics (README.md, "Metrics"): the
// capacity the pool has and the one the controller wants, so the
// dashboard shows every decision, acted on or not.
func (h *Handler) publish(ctx context.Context, r capacity.Recommendation) {
	direction := r.Direction
	if direction == capacity.Hold {
		direction = "hold"
	}
	h.log.InfoContext(ctx, "controller decision", r.LogAttrs()...)
	now := h.now()
	pl := telemetry.Dimension{Name: "Pool", Value: r.Pool}
	errs := errors.Join(
		telemetry.EmitMetrics(ctx, h.log, now, []telemetry.Dimension{pl, {Name: "Decision", Value: direction}}, [][]string{{"Pool", "Decision"}},
			telemetry.Metric{Name: "ControllerDecisions", Value: 1, Unit: telemetry.Count}),
		telemetry.EmitMetrics(ctx, h.log, now, []telemetry.Dimension{pl}, [][]string{{"Pool"}},
			telemetry.Metric{Name: "CurrentCapacity", Value: float64(r.Current), Unit: telemetry.Count},
			telemetry.Metric{Name: "DesiredCapacity", Value: float64(r.Desired), Unit: telemetry.Count},
			telemetry.Metric{Name: "InFlightNodes", Value: float64(r.InFlight), Unit: telemetry.Count},
			telemetry.Metric{Name: "ForecastFloor", Value: float64(r.Floor), Unit: telemetry.Count}),
	)
	// The load's own call, the forecaster's history, only when nodes
	// report it: a missing datapoint is honest, a zero would teach the
	// forecast a quiet hour.
	if r.Reporting > 0 {
		errs = errors.Join(errs, telemetry.EmitMetrics(ctx, h.log, now, []telemetry.Dimension{pl}, [][]string{{"Pool"}},
			telemetry.Metric{Name: "LoadCapacity", Value: float64(r.LoadNodes), Unit: telemetry.Count}))
	}
	if errs != nil {
		h.log.ErrorContext(ctx, "decision metrics not published", "pool", r.Pool, "error", errs.Error())
	}
}

// operator handles a manual request: no dedupe and no cooldown (an
// operator means it), but the same lock and the same workflow; it works on
// a paused pool, which is how an operator acts while alarms are held. A
// dry run also says what the controller would do now.
func (h *Handler) operator(ctx context.Context, raw json.RawMessage) (Decision, error) {
	r, err := events.ParseOperatorEvent(raw)
	if err != nil {
		return Decision{}, err
	}
	p, ok := h.config.Find(r.Pool)
	if !ok {
		return Decision{}, events.Invalid("operator request: pool %q is not configured", r.Pool)
	}
	if r.Count > p.Capacity.Max {
		return Decision{}, events.Invalid("operator request: count %d is above the pool's max of %d", r.Count, p.Capacity.Max)
	}
	now := h.now()
	ref := pool.AlarmRef{Pool: p.Name, Direction: pool.Direction(r.Direction)}
	d := Decision{
		Action: ActionScale, Pool: p.Name, Direction: ref.Direction, Alarm: "operator:" + r.Operator,
		Execution: ExecutionName(ref, "operator:"+r.Operator+":"+r.Reason, now),
		Reason:    fmt.Sprintf("%s asked for %d node(s) %s: %s", r.Operator, r.Count, r.Direction, r.Reason),
	}
	if r.DryRun {
		rec, _, err := h.recommend(ctx, p, capacity.Signal{Source: capacity.SourceOperator})
		if err != nil {
			return d, err
		}
		d.Recommendation = &rec
		d.Reason = fmt.Sprintf("dry run: %s; the controller would %s", d.Reason, describe(rec))
	}
	// An operator's request is a count, not a size: it stands however
	// the pool changed.
	return h.startRequest(ctx, d, events.ScaleRequest{
		Pool: p.Name, Direction: r.Direction, Execution: d.Execution, Alarm: d.Alarm, Reason: d.Reason,
		RequestedAt: now.UTC(), Count: r.Count, DryRun: r.DryRun,
	}, nil)
}

// describe says in words what a recommendation would do.
func describe(r capacity.Recommendation) string {
	switch r.Direction {
	case capacity.Grow:
		return fmt.Sprintf("grow from %d to %d (%s)", r.Current, r.Desired, r.Reason)
	case capacity.Shrink:
		return fmt.Sprintf("shrink from %d to %d (%s)", r.Current, r.Desired, r.Reason)
	}
	return fmt.Sprintf("hold at %d (%s)", r.Current, r.Reason)
}

// busy answers a decision for a pool another execution holds. A request to
// grow while the pool is draining nodes cancels those drains: the nodes go
// back into service at full weight, which is faster and kinder to their
// sessions than launching new ones.
func (h *Handler) busy(ctx context.Context, d Decision, req events.ScaleRequest, held error) (Decision, error) {
	d.Action, d.Execution = ActionIgnore, ""
	d.Reason = "pool busy: " + held.Error() + "; wanted: " + d.Reason
	if d.Direction != pool.ScaleOut || req.WarmOnly {
		return d, nil
	}
	lease, ok, err := h.store.GetLock(ctx, d.Pool)
	if err != nil || !ok || !strings.HasPrefix(lease.Owner, d.Pool+"-"+string(pool.ScaleIn)+"-") {
		return d, err
	}
	if err := h.store.CancelDrains(ctx, d.Pool, lease.Owner, d.Alarm); err != nil {
		return d, err
	}
	d.Reason = fmt.Sprintf("cancelled the drains of scale-in %s: its nodes return to service", lease.Owner)
	return d, nil
}

// changed re-reads the pool under its lock and says how it changed since
// the decision read it, or "" when it did not. A decision reads the nodes
// before it takes the lock, and in between another decision's plan may
// have written its nodes and handed the lock back: acting on the stale
// count would start a second planning round for capacity already on its
// way (a burst of alarm state changes did). The next decision, seconds
// away under pressure and a minute at most, sizes the pool from the new
// count.
func (h *Handler) changed(ctx context.Context, p pool.Pool, rec capacity.Recommendation) (string, error) {
	nodes, err := h.store.ListNodes(ctx, p.Name)
	if err != nil {
		return "", fmt.Errorf("re-reading the pool under its lock: %w", err)
	}
	if now := capacity.Measure(p, nodes, h.now()).Sample.Capacity; now != rec.Current {
		return fmt.Sprintf("the pool changed while this decision was made (%d nodes serving or in flight now, %d when it read them); the next decision sizes it", now, rec.Current), nil
	}
	return "", nil
}

// startRequest takes the pool lock for the execution and starts it. A busy
// pool or an execution that already exists turns the decision into an
// ignore; so does a pool that changed since the decision read it (checked
// under the lock, when changed is given); a failed start, or one given
// up, gives the lock back. A started scale-out marks the pool's scale-out
// cooldown from the decision on, unless it only keeps the warm pool.
func (h *Handler) startRequest(ctx context.Context, d Decision, req events.ScaleRequest, changed func(context.Context) (string, error)) (Decision, error) {
	machine := h.machines[d.Direction]
	if machine == "" {
		d.Action, d.Reason, d.Execution = ActionIgnore, fmt.Sprintf("no scale-%s workflow is deployed", d.Direction), ""
		return d, nil
	}
	lease := scaleInLease
	if d.Direction == pool.ScaleOut {
		lease = scaleOutLease
	}
	if _, err := h.store.AcquireLock(ctx, d.Pool, d.Execution, lease); err != nil {
		var held *events.LockHeld
		if errors.As(err, &held) {
			return h.busy(ctx, d, req, err)
		}
		return d, fmt.Errorf("taking the pool lock: %w", err)
	}
	giveBack := func() {
		if _, rerr := h.store.ReleaseLock(context.WithoutCancel(ctx), d.Pool, d.Execution); rerr != nil {
			h.log.ErrorContext(ctx, "releasing the lock of a start given up; it expires by itself", "pool", d.Pool, "error", rerr.Error())
		}
	}
	if changed != nil {
		why, err := changed(ctx)
		if err != nil || why != "" {
			giveBack()
			d.Action, d.Execution, d.Reason = ActionIgnore, "", why+"; wanted: "+d.Reason
			return d, err
		}
	}
	input, err := json.Marshal(req)
	if err != nil {
		return d, err
	}
	out, err := h.sfn.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(machine), Name: aws.String(d.Execution), Input: aws.String(string(input)),
	})
	var exists *sfntypes.ExecutionAlreadyExists
	if errors.As(err, &exists) {
		d.Action, d.Reason = ActionIgnore, "execution "+d.Execution+" already started for this state change"
		return d, nil
	}
	if err != nil {
		giveBack()
		return d, fmt.Errorf("starting execution %s: %w", d.Execution, err)
	}
	d.ExecutionARN = aws.ToString(out.ExecutionArn)
	if d.Direction == pool.ScaleOut && !req.DryRun && !req.WarmOnly {
		if err := h.store.MarkScaled(ctx, d.Pool, string(pool.ScaleOut), h.now(), d.Execution); err != nil {
			h.log.ErrorContext(ctx, "marking the scale-out cooldown", "pool", d.Pool, "error", err.Error())
		}
	}
	return d, nil
}
