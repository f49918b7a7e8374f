package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
)

// Store is what the probe needs from the node table.
type Store interface {
	GetNode(ctx context.Context, pool, id string) (fleet.Node, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
}

// Request is the probe function's input. Attempt counts the probes made so
// far; the workflow starts it at zero and feeds each answer back.
type Request struct {
	Task    events.NodeTask `json:"task"`
	Attempt int             `json:"attempt"`
}

// Result is the probe function's answer. When not Healthy the workflow
// waits IntervalSeconds in a Wait state and probes again.
type Result struct {
	Healthy         bool        `json:"healthy"`
	Attempt         int         `json:"attempt"`
	IntervalSeconds int         `json:"intervalSeconds"`
	Measurement     Measurement `json:"measurement"`
}

// LogAttrs names the node in the invocation's log line.
func (r Request) LogAttrs() []any {
	return r.Task.LogAttrs()
}

// LogAttrs adds the measured values.
func (r Result) LogAttrs() []any {
	m := r.Measurement
	return []any{"healthy", r.Healthy, "attempt", r.Attempt, "httpStatus", m.HTTPStatus, "httpLatencyMs", m.HTTPLatencyMs, "mediaMs", m.MediaMs, "reason", m.Reason}
}

// Handler is the probe function.
type Handler struct {
	prober Prober
	store  Store
	pools  pool.File
	now    func() time.Time
	log    *slog.Logger
}

// NewHandler builds the probe handler.
func NewHandler(pr Prober, store Store, pools pool.File, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{prober: pr, store: store, pools: pools, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Result, error) {
	return invocation.Handler("probe", h.log, h.now, h.handle)
}

func (h *Handler) handle(ctx context.Context, req Request) (Result, error) {
	p, n, err := fleet.OwnedNode(ctx, h.store, h.pools, req.Task)
	if err != nil {
		return Result{}, err
	}
	if n.State == fleet.Shifting || n.State == fleet.Active || n.State == fleet.Warm {
		return Result{Healthy: true, Attempt: req.Attempt, Measurement: Measurement{Healthy: true, Reason: "already probed"}}, nil
	}
	if n.State != fleet.Probing {
		return Result{}, events.Conflict(nil, "node %s is %s, not PROBING", n.ID, n.State)
	}
	ep, err := Resolve(n.ID, n.PrivateIP, p)
	if err != nil {
		return Result{}, err
	}
	m := h.prober.Probe(ctx, ep, p.Probe)
	res := Result{Healthy: m.Healthy, Attempt: req.Attempt + 1, IntervalSeconds: invocation.WaitSeconds(p.Probe.Interval.D()), Measurement: m}
	if m.Healthy && n.Goal == events.GoalWarm {
		// A node for the warm pool takes no traffic: it stays PROBING
		// until the park step has stopped it.
		return res, nil
	}
	if m.Healthy {
		if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Probing, n.Version, fleet.Shifting, fleet.Change{Endpoint: ep.Host}); err != nil {
			return Result{}, err
		}
		return res, nil
	}
	if res.Attempt >= p.Probe.Attempts {
		return Result{}, events.Probe("node %s failed %d of %d probes at %s: %s", n.ID, res.Attempt, p.Probe.Attempts, ep.Host, m)
	}
	return res, nil
}
