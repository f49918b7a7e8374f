// Package fleet keeps the truth about every media node, pool lock, cooldown
// and dedupe mark in the DynamoDB node table. Every write is conditional, so
// two executions can never both own a node or a pool.
package fleet

import (
	"context"

	"github.com/google/uuid"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/pool"
)

// State is where a node is in its life.
type State string

// Node states, in the order a node normally moves through them.
const (
	Pending      State = "PENDING"
	Provisioning State = "PROVISIONING"
	Deploying    State = "DEPLOYING"
	Probing      State = "PROBING"
	Shifting     State = "SHIFTING"
	Active       State = "ACTIVE"
	Draining     State = "DRAINING"
	Terminated   State = "TERMINATED"
	RollingBack  State = "ROLLING_BACK"
	Failed       State = "FAILED"
	// Warm is a stopped, already deployed warm-pool instance, started
	// before any new instance is launched.
	Warm State = "WARM"
)

// transitions is the one table of allowed moves. Every non-terminal state
// may roll back. DRAINING may return to ACTIVE because a scale-out alarm
// cancels a pending drain instead of launching new nodes.
//
// The warm pool's moves: a node launched to be parked goes PROBING -> WARM
// once its instance has stopped; a scale-out claims a WARM node back to
// PENDING (it keeps its instance) and, since it was deployed before it was
// parked, its started instance goes PROVISIONING -> PROBING without a
// second deployment; a stale WARM node is retired straight to TERMINATED.
var transitions = map[State][]State{
	Pending:      {Provisioning, RollingBack},
	Warm:         {Pending, Terminated, RollingBack},
	Provisioning: {Deploying, Probing, RollingBack},
	Deploying:    {Probing, RollingBack},
	Probing:      {Shifting, Warm, RollingBack},
	Shifting:     {Active, RollingBack},
	Active:       {Draining, RollingBack},
	Draining:     {Terminated, Active, RollingBack},
	RollingBack:  {Failed},
	Terminated:   nil,
	Failed:       nil,
}

// CanTransition reports whether a node may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Serving reports whether a node in this state counts towards the pool's
// capacity: it is on its way in or in service, and not leaving. Node.Serving
// also leaves out nodes on their way into the warm pool.
func (s State) Serving() bool {
	switch s {
	case Pending, Provisioning, Deploying, Probing, Shifting, Active:
		return true
	}
	return false
}

// Transitional reports whether a node in this state is in the middle of a
// workflow step: someone must finish moving it (its execution, or the
// reconciler once that execution has ended).
func (s State) Transitional() bool {
	switch s {
	case Pending, Provisioning, Deploying, Probing, Shifting, Draining, RollingBack:
		return true
	}
	return false
}

// Terminal reports whether a node in this state is finished for good.
func (s State) Terminal() bool { return s == Terminated || s == Failed }

// Known reports whether s is one of the states above.
func (s State) Known() bool {
	_, ok := transitions[s]
	return ok
}

// States lists every state, for tests and operator tools.
func States() []State {
	return []State{Pending, Warm, Provisioning, Deploying, Probing, Shifting, Active, Draining, Terminated, RollingBack, Failed}
}

// NewNodeID returns a node id. UUIDv7 ids sort by creation time, so "newest
// first" needs no extra attribute, and they never collide across executions.
func NewNodeID() string {
	return "n-" + uuid.Must(uuid.NewV7()).String()
}

// Owner checks that a node belongs to the execution acting on it. A node
// taken over by another execution (after a lease expired, say) must not be
// touched by the old one.
func (n Node) Owner(execution string) error {
	if n.Execution != execution {
		return events.Conflict(nil, "node %s/%s belongs to execution %q, not %q", n.Pool, n.ID, n.Execution, execution)
	}
	return nil
}

// NodeReader reads one node.
type NodeReader interface {
	GetNode(ctx context.Context, pool, id string) (Node, error)
}

// OwnedNode is how every per-node step starts: the pool's configuration,
// the node as stored, and proof that the node belongs to the execution
// acting on it.
func OwnedNode(ctx context.Context, r NodeReader, pools pool.File, task events.NodeTask) (pool.Pool, Node, error) {
	p, ok := pools.Find(task.Pool)
	if !ok {
		return pool.Pool{}, Node{}, events.Invalid("pool %q is not configured", task.Pool)
	}
	n, err := r.GetNode(ctx, task.Pool, task.Node)
	if err != nil {
		return pool.Pool{}, Node{}, err
	}
	if err := n.Owner(task.Execution); err != nil {
		return pool.Pool{}, Node{}, err
	}
	return p, n, nil
}
