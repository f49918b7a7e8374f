// Package rollback undoes a node that failed anywhere on its way into
// service: traffic off, instance terminated, record FAILED with the reason.
// Every step is safe to repeat, so a retried rollback finishes the job.
package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/traffic"
)

// Store is what rollback needs from the node table.
type Store interface {
	GetNode(ctx context.Context, pool, id string) (fleet.Node, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
}

// Transitioner moves a node; Undo needs nothing else from the table.
type Transitioner interface {
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
}

// Instances is what rollback needs from EC2.
type Instances interface {
	FindByNode(ctx context.Context, node string) (compute.Launched, bool, error)
	Terminate(ctx context.Context, id string) error
}

// Request is the rollback function's input. Action is
// events.RollbackTrafficOff for the first step, or empty for the rest.
type Request struct {
	Action  string          `json:"action,omitempty"`
	Task    events.NodeTask `json:"task"`
	Failure events.Failure  `json:"failure"`
}

// Result reports how the node ended.
type Result struct {
	Node       string `json:"node"`
	State      string `json:"state"`
	Terminated string `json:"terminated,omitempty"`
	Reason     string `json:"reason"`
}

// LogAttrs names the node in the invocation's log line.
func (r Request) LogAttrs() []any {
	return append(r.Task.LogAttrs(), "cause", r.Failure.Error)
}

// LogAttrs adds what rollback did.
func (r Result) LogAttrs() []any {
	return []any{"state", r.State, "terminated", r.Terminated, "reason", r.Reason}
}

// Handler is the rollback function.
type Handler struct {
	weights   func(mode string) (traffic.Weights, error)
	instances Instances
	store     Store
	pools     pool.File
	now       func() time.Time
	log       *slog.Logger
}

// NewHandler builds the rollback handler.
func NewHandler(weights func(mode string) (traffic.Weights, error), instances Instances, store Store, pools pool.File, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{weights: weights, instances: instances, store: store, pools: pools, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Result, error) {
	return invocation.Handler("rollback", h.log, h.now, h.handle)
}

func (h *Handler) handle(ctx context.Context, req Request) (Result, error) {
	p, n, err := fleet.OwnedNode(ctx, h.store, h.pools, req.Task)
	if err != nil {
		return Result{}, err
	}
	res := Result{Node: n.ID, Reason: req.Failure.Reason()}
	if n.State.Terminal() {
		res.State, res.Reason = string(n.State), n.Reason
		return res, nil
	}
	w, err := h.weights(p.Traffic.Mode)
	if err != nil {
		return Result{}, err
	}
	switch req.Action {
	case "":
	case events.RollbackTrafficOff:
		// Nothing is written to the table first: traffic comes off
		// even while DynamoDB refuses writes.
		if err := w.Remove(ctx, p, n.ID, n.Endpoint); err != nil {
			return Result{}, fmt.Errorf("taking traffic off failed node %s: %w", n.ID, err)
		}
		res.State = string(n.State)
		return res, nil
	default:
		return Result{}, events.Invalid("rollback action %q is not %s or empty", req.Action, events.RollbackTrafficOff)
	}
	if res.Terminated, err = Undo(ctx, h.store, h.instances, w, p, n, res.Reason); err != nil {
		return Result{}, err
	}
	res.State = string(fleet.Failed)
	return res, nil
}

// Undo takes a node out of service for good: ROLLING_BACK with the
// reason, its traffic removed (when w is given), every instance of the node
// terminated (the recorded one, and one tagged for the node that an
// interrupted launch never recorded), then FAILED at weight 0. Each step is
// safe to repeat, so the workflow's rollback and the reconciler share it.
func Undo(ctx context.Context, store Transitioner, instances Instances, w traffic.Weights, p pool.Pool, n fleet.Node, reason string) (terminated string, err error) {
	if n.State != fleet.RollingBack {
		if n, err = store.Transition(ctx, n.Pool, n.ID, n.State, n.Version, fleet.RollingBack, fleet.Change{Reason: reason}); err != nil {
			return "", err
		}
	}
	if w != nil {
		if err := w.Remove(ctx, p, n.ID, n.Endpoint); err != nil {
			return "", fmt.Errorf("taking traffic off node %s: %w", n.ID, err)
		}
	}
	ids := map[string]bool{}
	if n.InstanceID != "" {
		ids[n.InstanceID] = true
	}
	if l, found, err := instances.FindByNode(ctx, n.ID); err != nil {
		return "", err
	} else if found {
		ids[l.InstanceID] = true
	}
	for id := range ids {
		if err := instances.Terminate(ctx, id); err != nil {
			return "", err
		}
		terminated = id
	}
	zero := 0
	if _, err := store.Transition(ctx, n.Pool, n.ID, fleet.RollingBack, n.Version, fleet.Failed, fleet.Change{Weight: &zero}); err != nil {
		return "", err
	}
	return terminated, nil
}
