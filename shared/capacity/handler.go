package capacity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
)

// Store is what planning needs from the node table.
type Store interface {
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
	CreateNode(ctx context.Context, n fleet.Node) (fleet.Node, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
	ReleaseLock(ctx context.Context, pool, owner string) (bool, error)
	RecordPlan(ctx context.Context, plan events.Plan) (events.Plan, error)
}

// Instances terminates the instance of a retired warm node; one already
// gone is not an error.
type Instances interface {
	Terminate(ctx context.Context, id string) error
}

// Connections reads each node's live session count; nodes without a
// reading are left out.
type Connections interface {
	Connections(ctx context.Context, pool string, nodes []string, window time.Duration) (map[string]float64, error)
}

// connectionWindow is how far back a node's session count may come from.
const connectionWindow = 5 * time.Minute

// Handler is the plan function.
type Handler struct {
	store     Store
	conns     Connections
	instances Instances
	pools     pool.File
	newID     func() string
	now       func() time.Time
	log       *slog.Logger
}

// NewHandler builds the plan handler.
func NewHandler(store Store, conns Connections, instances Instances, pools pool.File, newID func() string, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{store: store, conns: conns, instances: instances, pools: pools, newID: newID, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (events.Plan, error) {
	return invocation.Handler("plan", h.log, h.now, h.plan)
}

// plan dispatches on the direction.
func (h *Handler) plan(ctx context.Context, req events.ScaleRequest) (events.Plan, error) {
	if req.Direction != events.DirectionOut && req.Direction != events.DirectionIn {
		return events.Plan{}, events.Invalid("plan: direction %q is not out or in", req.Direction)
	}
	if req.Execution == "" {
		return events.Plan{}, events.Invalid("plan: execution is required")
	}
	p, ok := h.pools.Find(req.Pool)
	if !ok {
		return events.Plan{}, events.Invalid("plan: pool %q is not configured", req.Pool)
	}
	nodes, err := h.store.ListNodes(ctx, p.Name)
	if err != nil {
		return events.Plan{}, err
	}
	if req.Direction == events.DirectionIn {
		return h.planIn(ctx, req, p, nodes)
	}
	return h.planOut(ctx, req, p, nodes)
}

// planIn chooses the nodes to drain. It writes nothing: the drain's first
// step claims each node with a conditional write.
func (h *Handler) planIn(ctx context.Context, req events.ScaleRequest, p pool.Pool, nodes []fleet.Node) (events.Plan, error) {
	var active []string
	for _, n := range nodes {
		if n.State == fleet.Active {
			active = append(active, n.ID)
		}
	}
	conns, err := h.conns.Connections(ctx, p.Name, active, connectionWindow)
	if err != nil {
		return events.Plan{}, err
	}
	plan := ScaleIn(req, p, nodes, conns)
	plan.DryRun = req.DryRun
	return plan, nil
}

// planOut computes a scale-out plan, records it, and writes its nodes: new
// ones as PENDING, warm ones claimed for this execution back to PENDING,
// stale or surplus warm ones retired. The plan is recorded before any node
// is written, so a retried plan step finishes the plan on record (every
// write below is idempotent) rather than planning again from the nodes
// an earlier attempt managed to write.
//
// Once the nodes are written they count as capacity for every later
// decision, so the plan hands the pool lock back: planning stays serial,
// and a later scale-out may add the difference while this one's nodes
// still launch and shift. Release at the end frees nothing more.
func (h *Handler) planOut(ctx context.Context, req events.ScaleRequest, p pool.Pool, nodes []fleet.Node) (events.Plan, error) {
	plan := ScaleOut(req, p, nodes, h.newID)
	if req.DryRun {
		plan.DryRun = true
		plan.Reasons = append(plan.Reasons, "dry run: nothing recorded, launched or changed")
		return plan, nil
	}
	plan, err := h.store.RecordPlan(ctx, plan)
	if err != nil {
		return events.Plan{}, err
	}
	if err := h.writePlan(ctx, req.Execution, p, plan, nodes); err != nil {
		return events.Plan{}, err
	}
	if _, err := h.store.ReleaseLock(ctx, p.Name, req.Execution); err != nil {
		return events.Plan{}, fmt.Errorf("handing the pool lock back after planning: %w", err)
	}
	return plan, nil
}

// writePlan makes the node table say what the plan says. A write an
// earlier attempt of the same execution already made is skipped.
func (h *Handler) writePlan(ctx context.Context, execution string, p pool.Pool, plan events.Plan, nodes []fleet.Node) error {
	byID := map[string]fleet.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	rev := p.Revision()
	for _, t := range plan.Nodes {
		n, exists := byID[t.Node]
		switch {
		case exists && n.Execution == execution && n.State != fleet.Warm:
			// Written by an earlier attempt.
		case t.Warm:
			if _, err := h.store.Transition(ctx, p.Name, n.ID, fleet.Warm, n.Version, fleet.Pending, fleet.Change{Execution: execution, Goal: events.GoalServe}); err != nil {
				return fmt.Errorf("claiming warm node %s: %w", n.ID, err)
			}
		default:
			if _, err := h.store.CreateNode(ctx, fleet.Node{
				Pool: p.Name, ID: t.Node, AZ: t.AZ, Subnet: t.Subnet, InstanceType: t.InstanceTypes[0], Execution: execution,
				Goal: t.Goal, Revision: rev,
			}); err != nil {
				return fmt.Errorf("recording planned node %s: %w", t.Node, err)
			}
		}
	}
	// Retiring comes after the new nodes are recorded, so a plan that
	// fails half way never leaves the warm pool emptier than it found it
	// without its refill on record.
	for _, t := range plan.Retire {
		n := byID[t.Node]
		if n.State == fleet.Terminated && n.Execution == execution {
			continue
		}
		if err := h.instances.Terminate(ctx, n.InstanceID); err != nil {
			return fmt.Errorf("retiring warm node %s: %w", n.ID, err)
		}
		if _, err := h.store.Transition(ctx, p.Name, n.ID, fleet.Warm, n.Version, fleet.Terminated, fleet.Change{
			Execution: execution, Goal: events.GoalRetire, Reason: "retired from the warm pool",
		}); err != nil {
			return fmt.Errorf("recording retired warm node %s: %w", n.ID, err)
		}
	}
	return nil
}
