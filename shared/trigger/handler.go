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
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
)

// dedupeTTL is how long a seen state change is remembered. EventBridge
// retries for up to 24 hours, so a shorter memory could let a retry through.
const dedupeTTL = 48 * time.Hour

// lockLease is how long a started execution owns its pool. It outlasts the
// longest workflow (a drain of up to an hour plus launches and bakes); the
// workflow releases the lock on every path long before, and an execution
// that died without releasing frees the pool when the lease runs out.
const lockLease = 6 * time.Hour

// Store is what the trigger needs from the node table.
type Store interface {
	MarkOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	LastScaled(ctx context.Context, pool, direction string) (time.Time, bool, error)
	MarkScaled(ctx context.Context, pool, direction string, at time.Time, execution string) error
	GetLock(ctx context.Context, pool string) (fleet.Lease, bool, error)
	CancelDrains(ctx context.Context, pool, execution, by string) error
	Status(ctx context.Context, pool string) (fleet.PoolStatus, error)
	AcquireLock(ctx context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error)
	ReleaseLock(ctx context.Context, pool, owner string) (bool, error)
}

// Executions is the part of the Step Functions client the trigger uses.
type Executions interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

// Handler is the trigger Lambda's handler.
type Handler struct {
	config   pool.File
	index    map[string]pool.AlarmRef
	store    Store
	sfn      Executions
	machines map[pool.Direction]string
	now      func() time.Time
	log      *slog.Logger
}

// NewHandler builds a handler over a validated configuration. machines maps
// a direction to the ARN of the state machine that scales that way.
func NewHandler(cfg pool.File, store Store, sfn Executions, machines map[pool.Direction]string, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{config: cfg, index: cfg.AlarmIndex(), store: store, sfn: sfn, machines: machines, now: now, log: log}
}

// Handle takes the raw event so that a malformed one is an InvalidInput
// error with a readable message rather than the runtime's decode error. It
// writes nothing before the event has been validated and routed.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Decision, error) {
	return invocation.Handler("trigger", h.log, h.now, h.handle)(ctx, raw)
}

// LogAttrs puts the decision in the invocation's log line.
func (d Decision) LogAttrs() []any {
	return []any{"pool", d.Pool, "alarm", d.Alarm, "direction", d.Direction, "action", d.Action, "reason", d.Reason, "execution", d.Execution}
}

func (h *Handler) handle(ctx context.Context, raw json.RawMessage) (Decision, error) {
	if events.IsOperatorEvent(raw) {
		return h.operator(ctx, raw)
	}
	ev, err := events.ParseAlarmEvent(raw)
	if err != nil {
		return Decision{}, err
	}
	ref, p, err := Route(ev, h.config, h.index)
	if err != nil {
		return Decision{Alarm: ev.Detail.AlarmName}, err
	}
	if ev.Detail.State.Value != events.AlarmStateAlarm {
		return Decide(ev, ref, p, Cooldown{}, h.now()), nil
	}
	first, err := h.store.MarkOnce(ctx, DedupeKey(ev), dedupeTTL)
	if err != nil {
		return Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name}, fmt.Errorf("checking for a duplicate event: %w", err)
	}
	if !first {
		return Decision{
			Action: ActionIgnore, Alarm: ev.Detail.AlarmName, Pool: p.Name, Direction: ref.Direction,
			Reason: fmt.Sprintf("duplicate: state change of %s at %s was already handled", ev.Detail.AlarmName, ev.Detail.State.Timestamp),
		}, nil
	}
	status, err := h.store.Status(ctx, p.Name)
	if err != nil {
		return Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name}, fmt.Errorf("reading pool status: %w", err)
	}
	if status.Paused {
		return Decision{
			Action: ActionIgnore, Alarm: ev.Detail.AlarmName, Pool: p.Name, Direction: ref.Direction,
			Reason: fmt.Sprintf("pool paused by %s since %s: %s", status.Operator, status.Since.Format(time.RFC3339), status.Reason),
		}, nil
	}
	cd := Cooldown{}
	if cd.LastScaled, cd.Known, err = h.store.LastScaled(ctx, p.Name, string(ref.Direction)); err != nil {
		return Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name}, fmt.Errorf("reading cooldown: %w", err)
	}
	switch ref.Direction {
	case pool.ScaleOut:
		// Every request to grow counts for scale-in stabilization, even
		// one the cooldown or a busy pool turns away.
		if err := h.store.MarkScaled(ctx, p.Name, wantOut, h.now(), ev.Detail.AlarmName); err != nil {
			return Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name}, err
		}
	case pool.ScaleIn:
		if cd.GrowWanted, cd.GrowKnown, err = h.store.LastScaled(ctx, p.Name, wantOut); err != nil {
			return Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name}, fmt.Errorf("reading the last request to grow: %w", err)
		}
	}
	d := Decide(ev, ref, p, cd, h.now())
	if d.Action != ActionScale {
		return d, nil
	}
	return h.start(ctx, d, ev)
}

// operator handles a manual request: no dedupe and no cooldown (an
// operator means it), but the same lock and the same workflow; it works on
// a paused pool, which is how an operator acts while alarms are held.
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
		d.Reason = "dry run: " + d.Reason
	}
	return h.startRequest(ctx, d, events.ScaleRequest{
		Pool: p.Name, Direction: r.Direction, Execution: d.Execution, Alarm: d.Alarm, Reason: d.Reason,
		RequestedAt: now.UTC(), Count: r.Count, DryRun: r.DryRun,
	})
}

// busy answers an alarm for a pool another execution holds. A request to
// grow while the pool is draining nodes cancels those drains: the nodes go
// back into service at full weight, which is faster and kinder to their
// sessions than launching new ones.
func (h *Handler) busy(ctx context.Context, d Decision, held error) (Decision, error) {
	d.Action, d.Execution = ActionIgnore, ""
	d.Reason = "pool busy: " + held.Error()
	if d.Direction != pool.ScaleOut {
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

// start starts the execution an alarm decided on.
func (h *Handler) start(ctx context.Context, d Decision, ev events.AlarmEvent) (Decision, error) {
	return h.startRequest(ctx, d, events.ScaleRequest{
		Pool: d.Pool, Direction: string(d.Direction), Execution: d.Execution, Alarm: d.Alarm, Reason: d.Reason, RequestedAt: ev.Detail.State.At,
	})
}

// startRequest takes the pool lock for the execution and starts it. A busy
// pool or an execution that already exists turns the decision into an
// ignore; a failed start gives the lock back.
func (h *Handler) startRequest(ctx context.Context, d Decision, req events.ScaleRequest) (Decision, error) {
	machine := h.machines[d.Direction]
	if machine == "" {
		d.Action, d.Reason, d.Execution = ActionIgnore, fmt.Sprintf("no scale-%s workflow is deployed", d.Direction), ""
		return d, nil
	}
	if _, err := h.store.AcquireLock(ctx, d.Pool, d.Execution, lockLease); err != nil {
		var held *events.LockHeld
		if errors.As(err, &held) {
			return h.busy(ctx, d, err)
		}
		return d, fmt.Errorf("taking the pool lock: %w", err)
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
		if _, rerr := h.store.ReleaseLock(ctx, d.Pool, d.Execution); rerr != nil {
			h.log.ErrorContext(ctx, "releasing the lock after a failed start", "pool", d.Pool, "error", rerr.Error())
		}
		return d, fmt.Errorf("starting execution %s: %w", d.Execution, err)
	}
	d.ExecutionARN = aws.ToString(out.ExecutionArn)
	return d, nil
}
