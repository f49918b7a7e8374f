// Package release ends every scaling execution, whatever happened: it
// frees the pool lock, starts the cooldown when the pool changed, and
// summarises what became of each node the execution planned.
package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// Outcomes of an execution.
const (
	Succeeded = "SUCCEEDED" // every planned node made it (or nothing was needed)
	Partial   = "PARTIAL"   // some made it, some did not
	Failed    = "FAILED"    // none made it, or planning itself failed
	Cancelled = "CANCELLED" // a scale-in whose drains were cancelled: every node back in service
	DryRun    = "DRY_RUN"   // planned and reported, nothing changed
)

// Store is what release needs from the node table.
type Store interface {
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
	ReleaseLock(ctx context.Context, pool, owner string) (bool, error)
	MarkScaled(ctx context.Context, pool, direction string, at time.Time, execution string) error
	DrainsCancelled(ctx context.Context, pool, execution string) (bool, error)
}

// Request is the release function's input. Failure is set when the
// execution failed before or outside the per-node work (planning, say).
type Request struct {
	Pool      string          `json:"pool"`
	Direction string          `json:"direction"`
	Execution string          `json:"execution"`
	Failure   *events.Failure `json:"failure,omitempty"`
	// Plan is the plan step's answer, when planning succeeded.
	Plan *events.Plan `json:"plan,omitempty"`
	// RequestedAt is when the alarm (or operator) asked, so the summary
	// can say how long the whole scale took.
	RequestedAt time.Time `json:"requestedAt,omitzero"`
	// Attempt is Step Functions' count of this step's retries so far
	// ($$.State.RetryCount). On the last one its retrier allows
	// (events.PersistentRetries) a table call that still fails no longer
	// fails the step: the summary is written with what was known.
	Attempt int `json:"attempt,omitempty"`
}

// NodeSummary is one node's end state.
type NodeSummary struct {
	Node         string `json:"node"`
	State        string `json:"state"`
	InstanceID   string `json:"instanceId,omitempty"`
	InstanceType string `json:"instanceType,omitempty"`
	AZ           string `json:"az,omitempty"`
	Weight       int    `json:"weight"`
	Reason       string `json:"reason,omitempty"`
	// Unfinished says the node was left in the middle of a step (a
	// rollback or drain that did not finish): the reconciler finishes it.
	Unfinished bool `json:"unfinished,omitempty"`
}

// Summary is the execution's final word.
type Summary struct {
	Status    string        `json:"status"`
	Pool      string        `json:"pool"`
	Execution string        `json:"execution"`
	Released  bool          `json:"released"`
	Nodes     []NodeSummary `json:"nodes"`
	Reason    string        `json:"reason,omitempty"`
	// Plan repeats the plan's reasons, so the summary says why.
	Plan []string `json:"plan,omitempty"`
}

// LogAttrs names the execution in the invocation's log line.
func (r Request) LogAttrs() []any {
	return []any{"pool", r.Pool, "execution", r.Execution, "direction", r.Direction}
}

// LogAttrs adds the outcome.
func (s Summary) LogAttrs() []any {
	return []any{"status", s.Status, "released", s.Released, "nodes", len(s.Nodes), "reason", s.Reason}
}

// Handler is the release function.
type Handler struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
}

// NewHandler builds the release handler.
func NewHandler(store Store, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{store: store, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Summary, error) {
	return invocation.Handler("release", h.log, h.now, h.handle)
}

func (h *Handler) handle(ctx context.Context, req Request) (Summary, error) {
	if req.Pool == "" || req.Execution == "" {
		return Summary{}, events.Invalid("release needs pool and execution")
	}
	s := Summary{Pool: req.Pool, Execution: req.Execution, Nodes: []NodeSummary{}}
	if req.Plan != nil {
		s.Plan = req.Plan.Reasons
	}
	// settle turns a failed table call into the step's failure, for Step
	// Functions to retry; on the last attempt into a line of the summary
	// instead, so the summary is never lost to the table.
	last := req.Attempt >= events.PersistentRetries
	var lost []string
	settle := func(what string, err error) error {
		switch {
		case err == nil:
			return nil
		case !last:
			return fmt.Errorf("%s: %w", what, err)
		}
		lost = append(lost, fmt.Sprintf("%s: %v", what, err))
		return nil
	}
	defer func() {
		if len(lost) > 0 {
			h.log.ErrorContext(ctx, "release could not write everything after every retry; the summary as known", "pool", s.Pool,
				"execution", s.Execution, "status", s.Status, "reason", s.Reason, "nodes", s.Nodes, "lost", lost)
		}
	}()
	note := func() {
		if len(lost) > 0 {
			s.Reason = strings.TrimPrefix(s.Reason+"; not recorded after every retry: "+strings.Join(lost, "; ")+
				" (the lock's lease runs out by itself)", "; ")
		}
	}
	if req.Plan != nil && req.Plan.DryRun {
		for _, t := range req.Plan.Nodes {
			s.Nodes = append(s.Nodes, NodeSummary{Node: t.Node, State: "PLANNED", InstanceID: t.InstanceID, AZ: t.AZ})
		}
		s.Status, s.Reason = DryRun, "dry run: nothing was changed"
		var err error
		s.Released, err = h.store.ReleaseLock(ctx, req.Pool, req.Execution)
		if err := settle("releasing the pool lock", err); err != nil {
			return Summary{}, err
		}
		note()
		h.publish(ctx, req, s, outcome{})
		return s, nil
	}
	nodes, err := h.store.ListNodes(ctx, req.Pool)
	unread := err != nil
	if err := settle("reading the pool's nodes", err); err != nil {
		return Summary{}, err
	}
	// A scale-out's node made it when ACTIVE, or WARM when it was
	// launched for the warm pool, or TERMINATED when the plan retired it;
	// a scale-in's when TERMINATED, and one back in ACTIVE had its drain
	// cancelled.
	goalOf := func(n fleet.Node) fleet.State {
		switch {
		case req.Direction == events.DirectionIn, n.Goal == events.GoalRetire:
			return fleet.Terminated
		case n.Goal == events.GoalWarm:
			return fleet.Warm
		}
		return fleet.Active
	}
	// A scale-in's node back in service had its drain cancelled (the pool
	// asked to grow) or put back after its drain failed: only the first
	// is the execution doing what was asked.
	cancelled := false
	if req.Direction == events.DirectionIn && !unread {
		cancelled, err = h.store.DrainsCancelled(ctx, req.Pool, req.Execution)
		if err := settle("reading whether the drains were cancelled", err); err != nil {
			return Summary{}, err
		}
	}
	good, bad, back, forced, parked, retired := 0, 0, 0, 0, 0, 0
	var unfinished []string
	for _, n := range nodes {
		if n.Execution != req.Execution {
			continue
		}
		if n.ForcedSessions != nil {
			forced += *n.ForcedSessions
		}
		ns := NodeSummary{Node: n.ID, State: string(n.State), InstanceID: n.InstanceID,
			InstanceType: n.InstanceType, AZ: n.AZ, Weight: n.Weight, Reason: n.Reason}
		switch goal := goalOf(n); {
		case n.State == goal:
			good++
			switch n.Goal {
			case events.GoalWarm:
				parked++
			case events.GoalRetire:
				retired++
			}
		case req.Direction == events.DirectionIn && n.State == fleet.Active && cancelled:
			back++
		default:
			bad++
			if n.State.Transitional() {
				ns.Unfinished = true
				unfinished = append(unfinished, fmt.Sprintf("%s (%s)", n.ID, n.State))
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	// Nodes that could not be read are the plan's, their end unknown.
	if unread && req.Plan != nil {
		for _, t := range req.Plan.Nodes {
			bad++
			s.Nodes = append(s.Nodes, NodeSummary{Node: t.Node, State: "UNKNOWN", AZ: t.AZ, InstanceID: t.InstanceID,
				Reason: "the node table could not be read: the reconciler checks the node"})
		}
	}
	// A scale-in's victim whose drain never claimed it is still another
	// execution's node: it was not removed, and the summary says so.
	if req.Direction == events.DirectionIn && req.Plan != nil && !unread {
		claimed := map[string]bool{}
		for _, ns := range s.Nodes {
			claimed[ns.Node] = true
		}
		for _, t := range req.Plan.Nodes {
			if !claimed[t.Node] {
				bad++
				s.Nodes = append(s.Nodes, NodeSummary{Node: t.Node, State: "NOT_DRAINED", AZ: t.AZ, InstanceID: t.InstanceID,
					Reason: "its drain never started: the node was left as it was"})
			}
		}
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Node < s.Nodes[j].Node })
	switch {
	case req.Failure != nil:
		s.Status, s.Reason = Failed, req.Failure.Reason()
	case unread:
		s.Status, s.Reason = Failed, "the nodes' end states are unknown"
	case bad == 0 && good == 0 && back > 0:
		s.Status, s.Reason = Cancelled, "the pool asked to grow: the drained nodes are back in service"
	case bad == 0:
		s.Status = Succeeded
	case good > 0:
		s.Status, s.Reason = Partial, "some nodes did not reach their goal"
	default:
		s.Status, s.Reason = Failed, "no node reached its goal"
	}
	if len(unfinished) > 0 {
		sort.Strings(unfinished)
		s.Reason += fmt.Sprintf("; %d node(s) left unfinished, for the reconciler: %s", len(unfinished), strings.Join(unfinished, ", "))
	}
	// A scale-in's cooldown runs from its end; a scale-out's from its
	// decision, which the trigger marks, so a long shift does not hold
	// the next growth of a pool that is still overloaded.
	if good > 0 && req.Direction == events.DirectionIn {
		if err := settle("marking the scale-in cooldown", h.store.MarkScaled(ctx, req.Pool, req.Direction, h.now(), req.Execution)); err != nil {
			return Summary{}, err
		}
	}
	// The lock goes last: the cooldown mark must be in place before the
	// next alarm can take the pool.
	s.Released, err = h.store.ReleaseLock(ctx, req.Pool, req.Execution)
	if err := settle("releasing the pool lock", err); err != nil {
		return Summary{}, err
	}
	note()
	h.publish(ctx, req, s, outcome{good: good, bad: bad, back: back, forced: forced, parked: parked, retired: retired, unfinished: len(unfinished)})
	return s, nil
}

// outcome counts what became of an execution's nodes; good includes the
// nodes parked in or retired from the warm pool.
type outcome struct {
	good, bad, back, forced, parked, retired, unfinished int
}

// publish writes the execution's metrics (README.md, "Metrics"): one scale
// event, the nodes added or removed, rollbacks, cancelled drains, forced
// sessions and the seconds from the request to the end, per pool,
// direction and status. It runs after the lock is released, and a failure
// to publish is logged, not returned: metrics must never hold a pool.
func (h *Handler) publish(ctx context.Context, req Request, s Summary, o outcome) {
	now := h.now()
	added, removed, rollbacks, cancelled := 0, 0, 0, 0
	if req.Direction == events.DirectionIn {
		removed, cancelled = o.good, o.back
	} else {
		added, rollbacks = o.good-o.parked-o.retired, o.bad
	}
	metrics := []telemetry.Metric{
		{Name: "ScaleEvents", Value: 1, Unit: telemetry.Count},
		{Name: "NodesAdded", Value: float64(added), Unit: telemetry.Count},
		{Name: "NodesRemoved", Value: float64(removed), Unit: telemetry.Count},
		{Name: "Rollbacks", Value: float64(rollbacks), Unit: telemetry.Count},
		{Name: "DrainsCancelled", Value: float64(cancelled), Unit: telemetry.Count},
		{Name: "ForcedSessions", Value: float64(o.forced), Unit: telemetry.Count},
		{Name: "WarmNodesParked", Value: float64(o.parked), Unit: telemetry.Count},
		{Name: "WarmNodesRetired", Value: float64(o.retired), Unit: telemetry.Count},
	}
	if !req.RequestedAt.IsZero() && now.After(req.RequestedAt) {
		metrics = append(metrics, telemetry.Metric{Name: "ScaleSeconds", Value: now.Sub(req.RequestedAt).Seconds(), Unit: telemetry.Seconds})
	}
	dims := []telemetry.Dimension{{Name: "Pool", Value: req.Pool}, {Name: "Direction", Value: req.Direction}, {Name: "Status", Value: s.Status}}
	err := errors.Join(
		telemetry.EmitMetrics(ctx, h.log, now, dims, [][]string{{"Pool", "Direction", "Status"}}, metrics...),
		// Also without dimensions, for the environment's alarm on nodes
		// left unfinished (an alarm reads one exact series).
		telemetry.EmitMetrics(ctx, h.log, now, dims, [][]string{{"Pool", "Direction", "Status"}, {}},
			telemetry.Metric{Name: "NodesUnfinished", Value: float64(o.unfinished), Unit: telemetry.Count}),
	)
	if err != nil {
		h.log.ErrorContext(ctx, "execution metrics not published", "pool", req.Pool, "execution", req.Execution, "error", err.Error())
	}
}
