// Package invocation is the boundary every workflow function shares: it
// decodes the raw input so a malformed one is InvalidInput, runs the step,
// turns any error into a named one Step Functions can match, writes one
// structured log line per invocation with the step, result and duration,
// and publishes the step's duration and outcome as metrics.
package invocation

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// Describer lets a request and its result add fields (pool, node,
// instance...) to the invocation's log line.
type Describer interface {
	LogAttrs() []any
}

// Handler adapts a typed step to a Lambda handler on raw JSON.
func Handler[Req any, Res any](step string, log *slog.Logger, now func() time.Time, run func(context.Context, Req) (Res, error)) func(context.Context, json.RawMessage) (Res, error) {
	return func(ctx context.Context, raw json.RawMessage) (Res, error) {
		start := now()
		var req Req
		var res Res
		var err error
		if uerr := json.Unmarshal(raw, &req); uerr != nil {
			err = events.Invalid("%s: input does not decode: %v", step, uerr)
		} else {
			res, err = run(ctx, req)
		}
		err = events.ForStateMachine(err)
		took := now().Sub(start)
		attrs := []any{"step", step, "durationMs", took.Milliseconds()}
		if d, ok := any(req).(Describer); ok {
			attrs = append(attrs, d.LogAttrs()...)
		}
		stepMetrics(ctx, log, now(), step, poolOf(attrs), took, err)
		if err != nil {
			log.ErrorContext(ctx, step+" failed", append(attrs, "result", "error", "errorType", err.(events.Named).ErrorName(), "error", err.Error())...)
			var zero Res
			return zero, err
		}
		if d, ok := any(res).(Describer); ok {
			attrs = append(attrs, d.LogAttrs()...)
		}
		log.InfoContext(ctx, step, append(attrs, "result", "ok")...)
		return res, nil
	}
}

// stepMetrics publishes StepDuration (milliseconds) and StepErrors (0 or
// 1) per step, and per pool and step when the request names a pool. A
// metrics failure is logged, never returned: it must not fail the step.
func stepMetrics(ctx context.Context, log *slog.Logger, at time.Time, step, pool string, took time.Duration, err error) {
	failed := 0.0
	if err != nil {
		failed = 1
	}
	dims := []telemetry.Dimension{{Name: "Step", Value: step}}
	sets := [][]string{{"Step"}}
	if pool != "" {
		dims = append(dims, telemetry.Dimension{Name: "Pool", Value: pool})
		sets = append(sets, []string{"Pool", "Step"})
	}
	if merr := telemetry.EmitMetrics(ctx, log, at, dims, sets,
		telemetry.Metric{Name: "StepDuration", Value: float64(took.Microseconds()) / 1000, Unit: telemetry.Milliseconds},
		telemetry.Metric{Name: "StepErrors", Value: failed, Unit: telemetry.Count},
	); merr != nil {
		log.ErrorContext(ctx, "step metrics not published", "step", step, "error", merr.Error())
	}
}

// poolOf finds the pool a request's log attributes name, if any.
func poolOf(attrs []any) string {
	for i := 0; i+1 < len(attrs); i += 2 {
		if k, ok := attrs[i].(string); ok && k == "pool" {
			if v, ok := attrs[i+1].(string); ok {
				return v
			}
		}
	}
	return ""
}

// EnvMaxWaitSeconds caps every wait a function asks the state machine for
// (bake times, probe intervals, polling). The local cloud sets it to a
// second or two so a replay of a five-step shift takes seconds, not
// minutes; on AWS it is unset and the configured times apply.
const EnvMaxWaitSeconds = "MEDIASCALE_MAX_WAIT_SECONDS"

// WaitSeconds turns a configured wait into the seconds a Wait state
// sleeps: at least 1, and at most the cap when one is set.
func WaitSeconds(d time.Duration) int {
	s := int(d.Round(time.Second) / time.Second)
	if c, err := strconv.Atoi(os.Getenv(EnvMaxWaitSeconds)); err == nil && c > 0 && s > c {
		s = c
	}
	if s < 1 {
		s = 1
	}
	return s
}

// EnvMaxDrainSeconds caps the drain timeout in local runs, so a drain that
// must force its last sessions ends in seconds; on AWS it is unset.
const EnvMaxDrainSeconds = "MEDIASCALE_MAX_DRAIN_SECONDS"

// DrainTimeout is the configured drain timeout, capped in local runs.
func DrainTimeout(d time.Duration) time.Duration {
	if c, err := strconv.Atoi(os.Getenv(EnvMaxDrainSeconds)); err == nil && c > 0 && d > time.Duration(c)*time.Second {
		return time.Duration(c) * time.Second
	}
	return d
}
