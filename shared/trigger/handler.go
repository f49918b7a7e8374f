package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/pool"
)

// dedupeTTL is how long a seen state change is remembered. EventBridge
// retries for up to 24 hours, so a shorter memory could let a retry through.
const dedupeTTL = 48 * time.Hour

// Store is what the trigger needs from the node table.
type Store interface {
	MarkOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	LastScaled(ctx context.Context, pool, direction string) (time.Time, bool, error)
}

// Handler is the trigger Lambda's handler.
type Handler struct {
	config pool.File
	index  map[string]pool.AlarmRef
	store  Store
	now    func() time.Time
	log    *slog.Logger
}

// NewHandler builds a handler over a validated configuration.
func NewHandler(cfg pool.File, store Store, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{config: cfg, index: cfg.AlarmIndex(), store: store, now: now, log: log}
}

// Handle takes the raw event so that a malformed one is an InvalidInput
// error with a readable message rather than the runtime's decode error. It
// writes nothing before the event has been validated and routed.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Decision, error) {
	start := h.now()
	d, err := h.handle(ctx, raw)
	err = events.ForStateMachine(err)
	attrs := []any{"step", "trigger", "pool", d.Pool, "alarm", d.Alarm, "direction", d.Direction,
		"durationMs", h.now().Sub(start).Milliseconds()}
	if err != nil {
		h.log.ErrorContext(ctx, "alarm refused", append(attrs, "result", "error", "error", err.Error(),
			"errorType", err.(events.Named).ErrorName())...)
		return Decision{}, err
	}
	h.log.InfoContext(ctx, "alarm decided", append(attrs, "result", d.Action, "reason", d.Reason, "execution", d.Execution)...)
	return d, nil
}

func (h *Handler) handle(ctx context.Context, raw json.RawMessage) (Decision, error) {
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
	last, known, err := h.store.LastScaled(ctx, p.Name, string(ref.Direction))
	if err != nil {
		return Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name}, fmt.Errorf("reading cooldown: %w", err)
	}
	return Decide(ev, ref, p, Cooldown{LastScaled: last, Known: known}, h.now()), nil
}
