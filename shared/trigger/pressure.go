package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
)

// Decisions under pressure (README.md, "Decisions under pressure"). An
// alarm reaches the trigger once per state change and the schedule once a
// minute; a crowd doubles in less. So while a pool is overloaded the
// trigger keeps a pressure loop running for it: a Standard execution of
// mediascale-<env>-pressure that waits 15 s and asks the trigger to decide
// the pool again, round after round, until the pool is within target. A
// loop lease in the node table keeps it to one loop per pool; each round
// renews it, and a loop that dies frees the pool for a new one within
// loopLease. A loop lasts at most events.MaxPressureRounds rounds.
const loopLease = 45 * time.Second

// WithPressureLoop names the state machine of the pressure loops; without
// one an overloaded pool waits for its alarms and the schedule.
func (h *Handler) WithPressureLoop(machineARN string) *Handler {
	h.loop = machineARN
	return h
}

// LoopName is the name of a pool's pressure loop started at t.
func LoopName(poolName string, t time.Time) string {
	return fmt.Sprintf("%s-pressure-%s", poolName, strings.ReplaceAll(t.UTC().Format("20060102T150405.000Z"), ".", ""))
}

// round is one round of a pool's pressure loop: the pool decided again,
// and whether the loop goes on.
func (h *Handler) round(ctx context.Context, raw json.RawMessage) (Decision, error) {
	r, err := events.ParsePressureRound(raw)
	if err != nil {
		return Decision{}, err
	}
	p, ok := h.config.Find(r.Pool)
	if !ok {
		return Decision{}, events.Invalid("pressure round: pool %q is not configured", r.Pool)
	}
	state := &events.PressureState{Pool: p.Name, Round: r.Round + 1, WaitSeconds: invocation.WaitSeconds(events.PressureInterval)}
	end := func(d Decision, why string) (Decision, error) {
		if _, err := h.store.EndLoop(ctx, p.Name, r.Loop); err != nil {
			h.log.WarnContext(ctx, "the pressure loop's lease stays until it expires", "pool", p.Name, "loop", r.Loop, "error", err.Error())
		}
		d.Pressure, d.Reason = state, strings.TrimPrefix(d.Reason+"; "+why, "; ")
		return d, nil
	}
	d := Decision{Pool: p.Name, Alarm: capacity.SourcePressure, Action: ActionIgnore}
	if r.Round >= events.MaxPressureRounds {
		return end(d, fmt.Sprintf("pressure loop %s ends after %d rounds: the pool's next alarm or tick starts another while it is overloaded", r.Loop, r.Round))
	}
	if _, err := h.store.RenewLoop(ctx, p.Name, r.Loop, loopLease); err != nil {
		var lost *events.StateConflict
		if errors.As(err, &lost) {
			d.Pressure, d.Reason = state, fmt.Sprintf("pressure loop %s no longer holds the pool's loop lease: it ends", r.Loop)
			return d, nil
		}
		return d, fmt.Errorf("renewing the pressure loop's lease: %w", err)
	}
	d, err = h.control(ctx, p, capacity.Signal{Source: capacity.SourcePressure}, h.now())
	if err != nil {
		return d, err
	}
	if rec := d.Recommendation; rec != nil && rec.Pressure != "" {
		state.Continue = true
		d.Pressure = state
		return d, nil
	}
	return end(d, fmt.Sprintf("round %d: the pool is within target; the pressure loop ends and the per-minute schedule decides it", r.Round+1))
}

// pressureLoop starts the pool's pressure loop after a decision that found
// it under pressure, unless one is running. A loop that cannot start
// costs only speed: the schedule still decides the pool every minute.
func (h *Handler) pressureLoop(ctx context.Context, d *Decision, p pool.Pool, rec capacity.Recommendation, sig capacity.Signal) {
	if h.loop == "" || rec.Pressure == "" || sig.Source == capacity.SourcePressure || sig.Source == capacity.SourceOperator {
		return
	}
	name := LoopName(p.Name, h.now())
	if _, err := h.store.ClaimLoop(ctx, p.Name, name, loopLease); err != nil {
		var held *events.LockHeld
		if !errors.As(err, &held) {
			h.log.WarnContext(ctx, "pressure loop not started; the schedule decides the pool every minute", "pool", p.Name, "error", err.Error())
		}
		return
	}
	input, _ := json.Marshal(events.PressureLoopInput{Pressure: events.PressureState{
		Pool: p.Name, WaitSeconds: invocation.WaitSeconds(events.PressureInterval), Continue: true}})
	_, err := h.sfn.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(h.loop), Name: aws.String(name), Input: aws.String(string(input))})
	var exists *sfntypes.ExecutionAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		if _, rerr := h.store.EndLoop(ctx, p.Name, name); rerr != nil {
			h.log.ErrorContext(ctx, "releasing the loop lease after a failed start", "pool", p.Name, "error", rerr.Error())
		}
		h.log.WarnContext(ctx, "pressure loop not started; the schedule decides the pool every minute", "pool", p.Name, "error", err.Error())
		return
	}
	d.PressureLoop = name
	d.Reason += fmt.Sprintf("; under pressure (%s): loop %s decides the pool every %s", rec.Pressure, name, events.PressureInterval)
}
