package trigger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// budgetLock is the lock that makes decisions under an environment's
// budget one at a time: two at once (a tick and an alarm, or two pools'
// alarms) would each share the budget as the other had not. It is held
// like a pool lock, under a name no pool can have.
const budgetLock = "_budget"

// Lock timing: a decision holds the budget for well under a second; one
// that finds it held waits a little, then leaves the pool to the next
// tick.
const (
	budgetLease    = 30 * time.Second
	budgetAttempts = 10
	budgetPause    = 200 * time.Millisecond
)

// pendingFor is how long a decision to grow counts as capacity before its
// nodes are written: the execution's plan writes them within seconds.
const pendingFor = 2 * time.Minute

// lockBudget takes the budget lock when the environment has a budget. It
// returns what releases it, or why the decision must wait for the next
// tick.
func (h *Handler) lockBudget(ctx context.Context) (release func(), held string) {
	if h.config.Budget == nil {
		return func() {}, ""
	}
	owner := "trigger:" + uuid.NewString()
	var err error
	for i := 0; i < budgetAttempts; i++ {
		if _, err = h.store.AcquireLock(ctx, budgetLock, owner, budgetLease); err == nil {
			return func() {
				if _, rerr := h.store.ReleaseLock(context.WithoutCancel(ctx), budgetLock, owner); rerr != nil {
					h.log.WarnContext(ctx, "the budget lock was not released; it expires by itself", "owner", owner, "error", rerr.Error())
				}
			}, ""
		}
		var lockHeld *events.LockHeld
		if !errors.As(err, &lockHeld) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Sprintf("the decision ran out of time waiting for the environment's budget (%v); the next tick decides", err)
		case <-time.After(budgetPause):
		}
	}
	return nil, fmt.Sprintf("another decision is sharing the environment's budget (%v); the next tick decides", err)
}

// claim is the pool's part in sharing the budget. It holds its nodes and
// the ones a recent decision to grow asked for, whose plan may not have
// written them yet; it wants what its load calls for, whatever its
// cooldown or growth bound says this minute, so a pool of higher priority
// keeps its room through its cooldown, and what its nodes last reported,
// so it keeps that room while their heartbeats run late. A paused pool
// wants what it has.
func (h *Handler) claim(ctx context.Context, a assessment) capacity.Claim {
	c := capacity.ClaimOf(a.pool, a.rec)
	if last, ok, err := h.store.LastDecision(ctx, a.pool.Name); err == nil && ok &&
		last.Direction == capacity.Grow && h.now().Sub(last.At) < pendingFor {
		c.Holding = max(c.Holding, last.Desired)
	}
	c.Wants = max(c.Wants, min(a.rec.LoadNodes, a.pool.Capacity.Max), c.Holding,
		capacity.LastReported(a.pool, a.in.Nodes, h.now(), pendingFor))
	if a.paused {
		c.Wants = c.Holding
	}
	return c
}

// share divides the environment's budget among the claims; nil without a
// budget, when every pool has what its controller says.
func (h *Handler) share(claims []capacity.Claim) map[string]capacity.Share {
	if h.config.Budget == nil {
		return nil
	}
	return capacity.Allocate(*h.config.Budget, claims)
}

// othersClaims are the claims of every pool but p, for a decision on p
// alone (an alarm's). A pool served before p (of higher priority, or of
// the same and first by name) claims what its controller recommends now,
// so that an alarm of a lower pool cannot take what a higher one is about
// to ask for; a pool served after p only holds what it runs and has just
// asked for.
func (h *Handler) othersClaims(ctx context.Context, p pool.Pool) ([]capacity.Claim, error) {
	var claims []capacity.Claim
	for _, o := range h.config.Pools {
		if o.Name == p.Name {
			continue
		}
		if o.Priority > p.Priority || o.Priority == p.Priority && o.Name < p.Name {
			a := h.assess(ctx, o, capacity.Signal{Source: capacity.SourceSchedule})
			if a.err != nil {
				return nil, fmt.Errorf("assessing pool %s for the budget: %w", o.Name, a.err)
			}
			claims = append(claims, h.claim(ctx, a))
			continue
		}
		nodes, err := h.store.ListNodes(ctx, o.Name)
		if err != nil {
			return nil, fmt.Errorf("reading pool %s's nodes for the budget: %w", o.Name, err)
		}
		holding := capacity.Measure(o, nodes, h.now()).Sample.Capacity
		c := h.claim(ctx, assessment{pool: o, rec: capacity.Recommendation{Current: holding, Desired: holding}})
		c.Wants = c.Holding
		claims = append(claims, c)
	}
	return claims, nil
}
