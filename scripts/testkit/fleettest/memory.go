// Package fleettest is an in-memory node store for handler tests. It keeps
// the real store's rules: the transition table, the expected state and the
// version, and answers a lost race with StateConflict.
package fleettest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
)

// Memory is an in-memory node table.
type Memory struct {
	mu    sync.Mutex
	nodes map[string]fleet.Node
	// Cancelled holds the executions whose drains were cancelled.
	Cancelled map[string]bool
	// Writes records every successful write as "node: FROM -> TO".
	Writes []string
	// Locks maps a pool to the owner of its lock, Renewed to how often
	// its owner renewed it.
	Locks   map[string]string
	Renewed map[string]int
	// Plans holds the recorded plans by execution.
	Plans map[string]events.Plan
}

// NewMemory returns a table holding the given nodes.
func NewMemory(nodes ...fleet.Node) *Memory {
	m := &Memory{nodes: map[string]fleet.Node{}, Cancelled: map[string]bool{}, Plans: map[string]events.Plan{}}
	for _, n := range nodes {
		if n.Version == 0 {
			n.Version = 1
		}
		m.nodes[n.Pool+"/"+n.ID] = n
	}
	return m
}

// Node returns a node as stored.
func (m *Memory) Node(pool, id string) fleet.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nodes[pool+"/"+id]
}

// GetNode implements the handlers' Store.
func (m *Memory) GetNode(_ context.Context, pool, id string) (fleet.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[pool+"/"+id]
	if !ok {
		return fleet.Node{}, fmt.Errorf("node %s/%s: %w", pool, id, fleet.ErrNotFound)
	}
	return n, nil
}

// ListNodes returns a pool's nodes.
func (m *Memory) ListNodes(_ context.Context, pool string) ([]fleet.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []fleet.Node
	for _, n := range m.nodes {
		if n.Pool == pool {
			out = append(out, n)
		}
	}
	return out, nil
}

// CreateNode adds a PENDING node.
func (m *Memory) CreateNode(_ context.Context, n fleet.Node) (fleet.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[n.Pool+"/"+n.ID]; ok {
		return fleet.Node{}, events.Conflict(nil, "node %s/%s already exists", n.Pool, n.ID)
	}
	n.State, n.Version, n.CreatedAt, n.UpdatedAt = fleet.Pending, 1, time.Now(), time.Now()
	m.nodes[n.Pool+"/"+n.ID] = n
	m.Writes = append(m.Writes, n.ID+": created")
	return n, nil
}

// Transition applies the transition table and the conditional write rules.
func (m *Memory) Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error) {
	if !fleet.CanTransition(from, to) {
		return fleet.Node{}, events.Invalid("node %s/%s: transition %s -> %s is not allowed", pool, id, from, to)
	}
	return m.write(pool, id, from, version, to, c)
}

// Update changes fields without moving the node.
func (m *Memory) Update(ctx context.Context, pool, id string, state fleet.State, version int64, c fleet.Change) (fleet.Node, error) {
	return m.write(pool, id, state, version, state, c)
}

func (m *Memory) write(pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[pool+"/"+id]
	if !ok || n.State != from || n.Version != version {
		return fleet.Node{}, events.Conflict(nil, "node %s/%s: expected %s at version %d, found %s at version %d", pool, id, from, version, n.State, n.Version)
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&n.InstanceID, c.InstanceID)
	set(&n.InstanceType, c.InstanceType)
	set(&n.AZ, c.AZ)
	set(&n.Subnet, c.Subnet)
	set(&n.PrivateIP, c.PrivateIP)
	set(&n.Endpoint, c.Endpoint)
	set(&n.Execution, c.Execution)
	set(&n.Command, c.Command)
	set(&n.Reason, c.Reason)
	set(&n.Goal, c.Goal)
	if c.Weight != nil {
		n.Weight = *c.Weight
	}
	if c.ForcedSessions != nil {
		v := *c.ForcedSessions
		n.ForcedSessions = &v
	}
	if !c.Deadline.IsZero() {
		n.Deadline = c.Deadline
	}
	n.State, n.Version, n.UpdatedAt = to, n.Version+1, time.Now()
	m.nodes[pool+"/"+id] = n
	m.Writes = append(m.Writes, fmt.Sprintf("%s: %s -> %s", id, from, to))
	return n, nil
}

// DrainsCancelled reports whether an execution's drains were cancelled.
func (m *Memory) DrainsCancelled(_ context.Context, _ string, execution string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Cancelled[execution], nil
}

// AcquireLock takes a pool's lock for owner unless another owner holds it.
func (m *Memory) AcquireLock(_ context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Locks == nil {
		m.Locks = map[string]string{}
	}
	if holder, ok := m.Locks[pool]; ok && holder != owner {
		return fleet.Lease{}, events.Held("pool %s is locked by %s", pool, holder)
	}
	m.Locks[pool] = owner
	return fleet.Lease{Pool: pool, Owner: owner, ExpiresAt: time.Now().Add(lease)}, nil
}

// RenewLock extends the lock owner holds; a lock held by another, or by
// nobody, is a StateConflict as the table's is. Renewed counts renewals.
func (m *Memory) RenewLock(_ context.Context, pool, owner string, lease time.Duration) (fleet.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Locks[pool] != owner {
		return fleet.Lease{}, events.Conflict(nil, "pool %s: %s no longer holds the lock", pool, owner)
	}
	if m.Renewed == nil {
		m.Renewed = map[string]int{}
	}
	m.Renewed[pool]++
	return fleet.Lease{Pool: pool, Owner: owner, ExpiresAt: time.Now().Add(lease)}, nil
}

// ReleaseLock frees a pool's lock if owner holds it.
func (m *Memory) ReleaseLock(_ context.Context, pool, owner string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Locks[pool] != owner {
		return false, nil
	}
	delete(m.Locks, pool)
	m.Writes = append(m.Writes, "lock of "+pool+": released by "+owner)
	return true, nil
}

// RecordPlan keeps the first plan recorded for an execution and returns it.
func (m *Memory) RecordPlan(_ context.Context, plan events.Plan) (events.Plan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.Plans[plan.Execution]; ok {
		return old, nil
	}
	m.Plans[plan.Execution] = plan
	m.Writes = append(m.Writes, "plan of "+plan.Execution+": recorded")
	return plan, nil
}
