package compute

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

// Actions of the provision function.
const (
	ActionLaunch = "launch"
	ActionCheck  = "check"
	// ActionPark stops the instance of a node launched for the warm pool
	// once it is probed, and parks the node as WARM when it has stopped.
	ActionPark = "park"
)

// launchBudget is how long an instance may take to reach "running" before
// the node is given up. EC2 usually needs under a minute.
const launchBudget = 10 * time.Minute

// Store is what provisioning needs from the node table.
type Store interface {
	GetNode(ctx context.Context, pool, id string) (fleet.Node, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
	Update(ctx context.Context, pool, id string, state fleet.State, version int64, c fleet.Change) (fleet.Node, error)
}

// Request is the provision function's input.
type Request = events.NodeAction

// Result is the provision function's answer; the state machine loops on a
// Wait state until Ready.
type Result struct {
	Ready bool `json:"ready"`
	// Deployed says a running instance needs no deployment: it was
	// deployed before it was parked in the warm pool, and its node went
	// straight to PROBING. Always present, so the state machine can
	// branch on it.
	Deployed     bool     `json:"deployed"`
	InstanceID   string   `json:"instanceId"`
	InstanceType string   `json:"instanceType,omitempty"`
	AZ           string   `json:"az,omitempty"`
	State        string   `json:"state,omitempty"`
	PrivateIP    string   `json:"privateIp,omitempty"`
	Skipped      []string `json:"skipped,omitempty"`
	// WaitSeconds is how long the workflow waits before checking again.
	WaitSeconds int `json:"waitSeconds"`
}

// pollEvery is how often the workflow asks whether an instance runs.
const pollEvery = 15 * time.Second

// Handler is the provision function.
type Handler struct {
	fleet *Fleet
	store Store
	pools pool.File
	now   func() time.Time
	log   *slog.Logger
}

// NewHandler builds the provision handler.
func NewHandler(f *Fleet, store Store, pools pool.File, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{fleet: f, store: store, pools: pools, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Result, error) {
	return invocation.Handler("provision", h.log, h.now, h.handle)
}

// LogAttrs adds what happened to the instance.
func (r Result) LogAttrs() []any {
	return []any{"instance", r.InstanceID, "ready", r.Ready, "state", r.State, "skipped", r.Skipped}
}

func (h *Handler) handle(ctx context.Context, req Request) (Result, error) {
	res, err := h.act(ctx, req)
	res.WaitSeconds = invocation.WaitSeconds(pollEvery)
	return res, err
}

func (h *Handler) act(ctx context.Context, req Request) (Result, error) {
	p, n, err := fleet.OwnedNode(ctx, h.store, h.pools, req.Task)
	if err != nil {
		return Result{}, err
	}
	switch req.Action {
	case ActionLaunch:
		return h.launch(ctx, req.Task, p, n)
	case ActionCheck:
		return h.check(ctx, req.Task, n)
	case ActionPark:
		return h.park(ctx, n)
	default:
		return Result{}, events.Invalid("provision action %q is not launch, check or park", req.Action)
	}
}

func (h *Handler) launch(ctx context.Context, task events.NodeTask, p pool.Pool, n fleet.Node) (Result, error) {
	var err error
	switch n.State {
	case fleet.Pending:
		if task.Warm && n.InstanceID != task.InstanceID {
			return Result{}, events.Conflict(nil, "warm node %s has instance %q, the plan started %q", n.ID, n.InstanceID, task.InstanceID)
		}
		if n, err = h.store.Transition(ctx, n.Pool, n.ID, n.State, n.Version, fleet.Provisioning, fleet.Change{Deadline: h.now().Add(launchBudget)}); err != nil {
			return Result{}, err
		}
	case fleet.Provisioning:
		// A retried launch: the node may already have its instance. A
		// warm one is started again, since the attempt that recorded it
		// may have died before StartInstances; starting a running
		// instance changes nothing.
		if n.InstanceID != "" && task.Warm {
			if _, err := h.fleet.StartWarm(ctx, task); err != nil {
				return Result{}, err
			}
		}
		if n.InstanceID != "" {
			return Result{InstanceID: n.InstanceID, InstanceType: n.InstanceType, AZ: n.AZ}, nil
		}
	default:
		return Result{}, events.Conflict(nil, "node %s is %s, it cannot be launched", n.ID, n.State)
	}
	var l Launched
	if task.Warm {
		l, err = h.fleet.StartWarm(ctx, task)
	} else {
		l, err = h.fleet.Launch(ctx, task, p)
	}
	if err != nil {
		return Result{}, err
	}
	if _, err := h.store.Update(ctx, n.Pool, n.ID, fleet.Provisioning, n.Version, fleet.Change{
		InstanceID: l.InstanceID, InstanceType: l.InstanceType, AZ: l.AZ, Subnet: l.Subnet,
	}); err != nil {
		return Result{}, fmt.Errorf("recording instance %s: %w", l.InstanceID, err)
	}
	return Result{InstanceID: l.InstanceID, InstanceType: l.InstanceType, AZ: l.AZ, Skipped: l.Skipped}, nil
}

func (h *Handler) check(ctx context.Context, task events.NodeTask, n fleet.Node) (Result, error) {
	switch {
	case n.State == fleet.Deploying:
		// A retried check after the node already moved on.
		return Result{Ready: true, InstanceID: n.InstanceID, State: "running", PrivateIP: n.PrivateIP}, nil
	case n.State == fleet.Probing && task.Warm:
		return Result{Ready: true, Deployed: true, InstanceID: n.InstanceID, State: "running", PrivateIP: n.PrivateIP}, nil
	}
	if n.State != fleet.Provisioning || n.InstanceID == "" {
		return Result{}, events.Conflict(nil, "node %s is %s without a launched instance", n.ID, n.State)
	}
	inst, err := h.fleet.Describe(ctx, n.InstanceID)
	if err != nil {
		return Result{}, err
	}
	res := Result{InstanceID: inst.ID, State: inst.State, PrivateIP: inst.PrivateIP}
	switch inst.State {
	case "pending":
		if !n.Deadline.IsZero() && h.now().After(n.Deadline) {
			return Result{}, events.Provision("instance %s of node %s is still pending after %s", inst.ID, n.ID, launchBudget)
		}
		return res, nil
	case "running":
	default:
		return Result{}, events.Provision("instance %s of node %s went %s while launching", inst.ID, n.ID, inst.State)
	}
	// A started warm node was deployed before it was parked, at the
	// pool's current revision (the plan starts no other): it goes
	// straight to its probe.
	next := fleet.Deploying
	if task.Warm && n.Command != "" {
		next, res.Deployed = fleet.Probing, true
	}
	if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Provisioning, n.Version, next, fleet.Change{PrivateIP: inst.PrivateIP}); err != nil {
		return Result{}, err
	}
	res.Ready = true
	return res, nil
}

// park stops a probed node launched for the warm pool and, once its
// instance has stopped, records it WARM. Stopping an instance that is
// already stopping or stopped is harmless, so a retried park is safe.
func (h *Handler) park(ctx context.Context, n fleet.Node) (Result, error) {
	if n.State == fleet.Warm {
		return Result{Ready: true, InstanceID: n.InstanceID, State: "stopped"}, nil
	}
	if n.State != fleet.Probing || n.Goal != events.GoalWarm || n.InstanceID == "" {
		return Result{}, events.Conflict(nil, "node %s is %s with goal %q: only a probed node launched for the warm pool is parked", n.ID, n.State, n.Goal)
	}
	inst, err := h.fleet.Describe(ctx, n.InstanceID)
	if err != nil {
		return Result{}, err
	}
	res := Result{InstanceID: inst.ID, State: inst.State}
	switch inst.State {
	case "stopped":
		if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Probing, n.Version, fleet.Warm, fleet.Change{Reason: "parked in the warm pool"}); err != nil {
			return Result{}, err
		}
		res.Ready = true
		return res, nil
	case "pending", "running":
		if err := h.fleet.Stop(ctx, n.InstanceID); err != nil {
			return Result{}, err
		}
		if _, err := h.store.Update(ctx, n.Pool, n.ID, fleet.Probing, n.Version, fleet.Change{Deadline: h.now().Add(launchBudget)}); err != nil {
			return Result{}, fmt.Errorf("recording the stop of %s: %w", n.InstanceID, err)
		}
		return res, nil
	case "stopping":
		if !n.Deadline.IsZero() && h.now().After(n.Deadline) {
			return Result{}, events.Provision("instance %s of node %s is still stopping after %s", inst.ID, n.ID, launchBudget)
		}
		return res, nil
	}
	return Result{}, events.Provision("instance %s of node %s went %s while being parked", inst.ID, n.ID, inst.State)
}
