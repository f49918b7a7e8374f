package traffic

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
)

// Store is what shifting needs from the node table.
type Store interface {
	GetNode(ctx context.Context, pool, id string) (fleet.Node, error)
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
	Update(ctx context.Context, pool, id string, state fleet.State, version int64, c fleet.Change) (fleet.Node, error)
}

// Weights sets and removes a node's traffic weight, whatever the pool's
// traffic mode.
type Weights interface {
	SetWeight(ctx context.Context, p pool.Pool, node, ip string, weight int) error
	// Remove takes the node out; ip is where it was registered.
	Remove(ctx context.Context, p pool.Pool, node, ip string) error
}

// Request is the shift function's input: the index of the step to take.
// Before taking step i > 0 the guard of step i-1 is checked, so every step,
// the last included, is judged after its bake; i == len(steps) only checks
// and activates.
type Request struct {
	Task events.NodeTask `json:"task"`
	Step int             `json:"step"`
}

// Result says what was done and how long to bake before the next call.
type Result struct {
	Step        int     `json:"step"`
	Percent     int     `json:"percent"`
	Weight      int     `json:"weight"`
	BakeSeconds int     `json:"bakeSeconds"`
	Done        bool    `json:"done"`
	Guard       Verdict `json:"guard"`
	// Pressure says why the step's bake was cut to traffic.pressureBake.
	Pressure string `json:"pressure,omitempty"`
	// Saturated says why the node took its full share at once, skipping
	// the steps between.
	Saturated string `json:"saturated,omitempty"`
}

// saturated reads the pool's nodes and judges Saturated; when they cannot
// be read the pool's steps stand.
func (h *Handler) saturated(ctx context.Context, p pool.Pool, r Reading) (bool, string) {
	nodes, err := h.store.ListNodes(ctx, p.Name)
	if err != nil {
		h.log.WarnContext(ctx, "pool nodes not read; the shift keeps the pool's steps", "pool", p.Name, "error", err.Error())
		return false, ""
	}
	refused := 0.0
	if r.PoolRefused != nil {
		refused = *r.PoolRefused
	}
	return Saturated(p, nodes, refused, h.now())
}

// LogAttrs names the node in the invocation's log line.
func (r Request) LogAttrs() []any {
	return append(r.Task.LogAttrs(), "shiftStep", r.Step)
}

// LogAttrs adds the weight set and the guard's verdict.
func (r Result) LogAttrs() []any {
	return []any{"percent", r.Percent, "weight", r.Weight, "done", r.Done, "guard", strings.Join(r.Guard.Reasons, "; "), "pressure", r.Pressure, "saturated", r.Saturated}
}

// Handler is the shift function.
type Handler struct {
	weights func(mode string) (Weights, error)
	guard   *Guard
	store   Store
	pools   pool.File
	now     func() time.Time
	log     *slog.Logger
}

// NewHandler builds the shift handler. weights returns the weight setter of
// a traffic mode.
func NewHandler(weights func(mode string) (Weights, error), guard *Guard, store Store, pools pool.File, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{weights: weights, guard: guard, store: store, pools: pools, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Result, error) {
	return invocation.Handler("shift", h.log, h.now, h.handle)
}

func (h *Handler) handle(ctx context.Context, req Request) (Result, error) {
	p, n, err := fleet.OwnedNode(ctx, h.store, h.pools, req.Task)
	if err != nil {
		return Result{}, err
	}
	steps := p.ShiftSteps()
	if n.State == fleet.Active {
		return Result{Step: len(steps), Percent: 100, Weight: n.Weight, Done: true}, nil
	}
	if n.State != fleet.Shifting {
		return Result{}, events.Conflict(nil, "node %s is %s, not SHIFTING", n.ID, n.State)
	}
	if req.Step < 0 || req.Step > len(steps) {
		return Result{}, events.Invalid("shift step %d is outside 0..%d", req.Step, len(steps))
	}
	res := Result{Step: req.Step}
	var reading Reading
	if req.Step > 0 {
		prev := steps[req.Step-1]
		if reading, err = h.guard.Read(ctx, p, n.ID, n.InstanceID, *prev.Guard, prev.Bake.D()); err != nil {
			return Result{}, err
		}
		res.Guard = Evaluate(*prev.Guard, reading)
		if !res.Guard.OK {
			return Result{}, events.Guard("node %s at %d%%: %s", n.ID, prev.Percent, strings.Join(res.Guard.Reasons, "; "))
		}
	} else if reading, err = h.guard.Read(ctx, p, n.ID, n.InstanceID, pool.Guard{}, time.Minute); err != nil {
		// The first step has nothing to judge; it reads only whether the
		// pool is under pressure, and without an answer bakes in full.
		h.log.WarnContext(ctx, "pool pressure not read; the first step bakes in full", "pool", p.Name, "node", n.ID, "error", err.Error())
	}
	if req.Step == len(steps) {
		full := FullWeight
		if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Shifting, n.Version, fleet.Active, fleet.Change{Weight: &full}); err != nil {
			return Result{}, err
		}
		res.Percent, res.Weight, res.Done = 100, full, true
		return res, nil
	}
	w, err := h.weights(p.Traffic.Mode)
	if err != nil {
		return Result{}, err
	}
	at := req.Step
	if last := len(steps) - 1; at < last {
		if full, why := h.saturated(ctx, p, reading); full {
			at, res.Saturated = last, why
		}
	}
	step := steps[at]
	res.Percent, res.Weight = step.Percent, StepWeight(step.Percent)
	if err := w.SetWeight(ctx, p, n.ID, n.Endpoint, res.Weight); err != nil {
		return Result{}, err
	}
	if _, err := h.store.Update(ctx, n.Pool, n.ID, fleet.Shifting, n.Version, fleet.Change{Weight: &res.Weight}); err != nil {
		return Result{}, err
	}
	res.Step = at + 1
	bake := step.Bake.D()
	if res.Saturated != "" {
		bake = p.Traffic.PressureBakeOrDefault()
	} else if under, why := Pressure(p, reading); under && p.Traffic.PressureBakeOrDefault() < bake {
		bake, res.Pressure = p.Traffic.PressureBakeOrDefault(), why
	}
	res.BakeSeconds = invocation.WaitSeconds(bake)
	return res, nil
}
