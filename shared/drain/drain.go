// Package drain takes a media node out of service without cutting its
// calls: traffic off first, the node told to refuse new sessions, its live
// sessions watched until they end or the drain timeout passes, the rest
// closed, and only then the instance terminated.
package drain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/deploy"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/traffic"
)

// Actions of the drain function.
const (
	ActionStart   = "start"
	ActionCheck   = "check"
	ActionFinish  = "finish"
	ActionRestore = "restore"
)

// pollEvery is how often the workflow counts a draining node's sessions.
const pollEvery = 15 * time.Second

// Document is the SSM document that makes a pool's media server refuse new
// sessions while keeping the ones it has: the deploy document's name with
// "-drain".
func Document(p pool.Pool) string { return p.Deploy.Document + "-drain" }

// Store is what draining needs from the node table.
type Store interface {
	DrainsCancelled(ctx context.Context, pool, execution string) (bool, error)
	GetNode(ctx context.Context, pool, id string) (fleet.Node, error)
	RenewLock(ctx context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
	Update(ctx context.Context, pool, id string, state fleet.State, version int64, c fleet.Change) (fleet.Node, error)
}

// Commands sends the refuse-new-sessions command to a node.
type Commands interface {
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, opts ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
}

// Sessions counts and closes a node's live sessions.
type Sessions interface {
	Count(ctx context.Context, ep health.Endpoint) (int, error)
	Close(ctx context.Context, ep health.Endpoint) (int, error)
}

// Instances terminates a drained node's instance.
type Instances interface {
	Terminate(ctx context.Context, id string) error
}

// Request is the drain function's input.
type Request = events.NodeAction

// Result says where the drain stands.
type Result struct {
	Drained bool `json:"drained"`
	// Cancelled says a request to grow arrived: put the node back.
	Cancelled   bool   `json:"cancelled"`
	Sessions    int    `json:"sessions"`
	Forced      int    `json:"forced"`
	State       string `json:"state"`
	WaitSeconds int    `json:"waitSeconds"`
}

// LogAttrs adds the drain's progress.
func (r Result) LogAttrs() []any {
	return []any{"drained", r.Drained, "cancelled", r.Cancelled, "sessions", r.Sessions, "forced", r.Forced, "state", r.State}
}

// Handler is the drain function.
type Handler struct {
	weights   func(mode string) (traffic.Weights, error)
	commands  Commands
	sessions  Sessions
	instances Instances
	store     Store
	pools     pool.File
	table     string
	now       func() time.Time
	log       *slog.Logger
}

// NewHandler builds the drain handler. table is the node table, which a
// restored node's agent reports to.
func NewHandler(weights func(mode string) (traffic.Weights, error), commands Commands, sessions Sessions, instances Instances,
	store Store, pools pool.File, table string, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{weights: weights, commands: commands, sessions: sessions, instances: instances, store: store, pools: pools, table: table, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Result, error) {
	return invocation.Handler("drain", h.log, h.now, h.handle)
}

func (h *Handler) handle(ctx context.Context, req Request) (Result, error) {
	p, ok := h.pools.Find(req.Task.Pool)
	if !ok {
		return Result{}, events.Invalid("pool %q is not configured", req.Task.Pool)
	}
	n, err := h.store.GetNode(ctx, req.Task.Pool, req.Task.Node)
	if err != nil {
		return Result{}, err
	}
	var res Result
	switch req.Action {
	case ActionStart:
		res, err = h.start(ctx, p, n, req.Task.Execution)
	case ActionCheck, ActionFinish, ActionRestore:
		// Only the execution that started the drain may go on with it.
		if err := n.Owner(req.Task.Execution); err != nil {
			return Result{}, err
		}
		switch req.Action {
		case ActionCheck:
			res, err = h.check(ctx, p, n)
		case ActionFinish:
			res, err = h.finish(ctx, n)
		default:
			res, err = h.restore(ctx, p, n)
		}
	default:
		return Result{}, events.Invalid("drain action %q is not start, check, finish or restore", req.Action)
	}
	res.WaitSeconds = invocation.WaitSeconds(pollEvery)
	return res, err
}

// start marks the node DRAINING with its deadline, then takes traffic off
// it and tells it to refuse new sessions. The conditional write comes
// first: it claims the node for this execution, so a node whose claim
// fails is left serving untouched, and a node that lost its traffic is
// always one the restore step and the reconciler know to be draining.
// Taking the record away and sending the command are both safe to repeat,
// so a retried start finishes what an interrupted one began.
func (h *Handler) start(ctx context.Context, p pool.Pool, n fleet.Node, execution string) (Result, error) {
	switch {
	case n.State == fleet.Draining && n.Execution == execution:
	case n.State == fleet.Active:
		zero := 0
		claimed, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Active, n.Version, fleet.Draining, fleet.Change{
			Execution: execution, Weight: &zero, Deadline: h.now().Add(invocation.DrainTimeout(p.Drain.Timeout.D())),
		})
		if err != nil {
			return Result{}, err
		}
		n = claimed
	default:
		return Result{}, events.Conflict(nil, "node %s is %s, only an ACTIVE node can be drained", n.ID, n.State)
	}
	w, err := h.weights(p.Traffic.Mode)
	if err != nil {
		return Result{}, err
	}
	if err := w.Remove(ctx, p, n.ID, n.Endpoint); err != nil {
		return Result{}, fmt.Errorf("taking traffic off node %s: %w", n.ID, err)
	}
	cmd, err := h.commands.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(Document(p)), InstanceIds: []string{n.InstanceID},
		Comment: aws.String(fmt.Sprintf("mediascale drain %s/%s: refuse new sessions", n.Pool, n.ID)),
	})
	if err != nil {
		return Result{}, fmt.Errorf("telling node %s to refuse new sessions: %w", n.ID, err)
	}
	h.log.InfoContext(ctx, "node draining", "pool", n.Pool, "node", n.ID, "command", aws.ToString(cmd.Command.CommandId), "deadline", n.Deadline)
	return Result{State: string(fleet.Draining)}, nil
}

// check counts the node's sessions: drained at or below the threshold;
// past the deadline the rest are closed and counted on the record.
func (h *Handler) check(ctx context.Context, p pool.Pool, n fleet.Node) (Result, error) {
	if n.State != fleet.Draining {
		return Result{}, events.Conflict(nil, "node %s is %s, not DRAINING", n.ID, n.State)
	}
	ep, err := health.Resolve(n.ID, n.PrivateIP, p)
	if err != nil {
		return Result{}, err
	}
	res := Result{State: string(n.State)}
	if res.Cancelled, err = h.store.DrainsCancelled(ctx, n.Pool, n.Execution); err != nil || res.Cancelled {
		return res, err
	}
	if err := h.renewLock(ctx, n); err != nil {
		return res, err
	}
	count, cerr := h.sessions.Count(ctx, ep)
	overdue := h.now().After(n.Deadline)
	switch {
	case cerr != nil && !overdue:
		h.log.WarnContext(ctx, "session count failed, waiting", "pool", n.Pool, "node", n.ID, "error", cerr.Error())
		return res, nil
	case cerr != nil:
		// Past the deadline and unreachable: nothing left to close.
		res.Drained = true
	case count <= p.Drain.ConnectionThreshold:
		res.Drained, res.Sessions = true, count
	case !overdue:
		res.Sessions = count
		return res, nil
	default:
		closed, err := h.sessions.Close(ctx, ep)
		if err != nil {
			return Result{}, fmt.Errorf("closing the last sessions of node %s: %w", n.ID, err)
		}
		res.Drained, res.Sessions, res.Forced = true, count, closed
	}
	forced := res.Forced
	if _, err := h.store.Update(ctx, n.Pool, n.ID, fleet.Draining, n.Version, fleet.Change{ForcedSessions: &forced}); err != nil {
		return Result{}, err
	}
	return res, nil
}

// renewLock extends the scale-in's hold on the pool for as long as its
// drains run. A lease another execution holds now is a StateConflict: the
// scale-in must stop acting on the pool, and the workflow restores the
// node. Any other failure is only logged: the lease has minutes left and
// the next check, seconds away, renews it.
func (h *Handler) renewLock(ctx context.Context, n fleet.Node) error {
	_, err := h.store.RenewLock(ctx, n.Pool, n.Execution, fleet.ScaleInLease)
	var lost *events.StateConflict
	switch {
	case err == nil:
		return nil
	case errors.As(err, &lost):
		return fmt.Errorf("scale-in %s no longer holds pool %s, so node %s goes back to service: %w", n.Execution, n.Pool, n.ID, err)
	}
	h.log.WarnContext(ctx, "the pool lock was not renewed; the next check renews it", "pool", n.Pool, "node", n.ID, "execution", n.Execution, "error", err.Error())
	return nil
}

// finish terminates the drained node's instance and marks it TERMINATED.
func (h *Handler) finish(ctx context.Context, n fleet.Node) (Result, error) {
	if n.State == fleet.Terminated {
		return Result{Drained: true, State: string(n.State)}, nil
	}
	if n.State != fleet.Draining {
		return Result{}, events.Conflict(nil, "node %s is %s, not DRAINING", n.ID, n.State)
	}
	if n.InstanceID != "" {
		if err := h.instances.Terminate(ctx, n.InstanceID); err != nil {
			return Result{}, err
		}
	}
	if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Draining, n.Version, fleet.Terminated, fleet.Change{Reason: "drained and terminated"}); err != nil {
		return Result{}, err
	}
	forced := 0
	if n.ForcedSessions != nil {
		forced = *n.ForcedSessions
	}
	return Result{Drained: true, Forced: forced, State: string(fleet.Terminated)}, nil
}

// restore puts a draining node back into service at full weight: the
// drain failed, or the pool needs the node again.
func (h *Handler) restore(ctx context.Context, p pool.Pool, n fleet.Node) (Result, error) {
	if n.State == fleet.Active {
		return Result{State: string(n.State)}, nil
	}
	if n.State != fleet.Draining {
		return Result{}, events.Conflict(nil, "node %s is %s, not DRAINING", n.ID, n.State)
	}
	// The deploy document rewrites the media server's configuration and
	// reloads it, so the node accepts new sessions again.
	if _, err := h.commands.SendCommand(ctx, deploy.Command(p, n, h.table, fmt.Sprintf("mediascale restore %s/%s: accept new sessions", n.Pool, n.ID))); err != nil {
		return Result{}, fmt.Errorf("telling node %s to accept new sessions: %w", n.ID, err)
	}
	w, err := h.weights(p.Traffic.Mode)
	if err != nil {
		return Result{}, err
	}
	if err := w.SetWeight(ctx, p, n.ID, n.Endpoint, traffic.FullWeight); err != nil {
		return Result{}, fmt.Errorf("giving node %s its traffic back: %w", n.ID, err)
	}
	// The record says why the node is back: a cancel, or a drain that
	// stopped early.
	reason := "drain stopped before the node was removed: back in service"
	if cancelled, err := h.store.DrainsCancelled(ctx, n.Pool, n.Execution); err == nil && cancelled {
		reason = "drain cancelled: the pool asked to grow"
	}
	full := traffic.FullWeight
	if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Draining, n.Version, fleet.Active, fleet.Change{Weight: &full, Reason: reason}); err != nil {
		return Result{}, err
	}
	return Result{State: string(fleet.Active)}, nil
}
