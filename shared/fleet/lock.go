package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mediascale/mediascale/events"
)

// Lease is the pool lock as stored: at most one scaling execution per pool.
type Lease struct {
	Pool      string
	Owner     string
	ExpiresAt time.Time
}

// lockPurgeGrace keeps an expired lock item around a day for inspection
// before the TTL sweeper removes it; expiry, not deletion, frees the pool.
const lockPurgeGrace = 24 * time.Hour

// AcquireLock takes the pool lock for owner for the given lease. It succeeds
// when the pool is free, when the current lease has expired (take-over), or
// when owner already holds it (a retried step). Otherwise it fails with
// LockHeld naming the holder.
func (s *Store) AcquireLock(ctx context.Context, pool, owner string, lease time.Duration) (Lease, error) {
	return s.acquire(ctx, pool, lockKey, "lock", owner, lease)
}

// ScaleInLease is the pool lock's lease for a scale-in. The trigger takes
// it and every drain check renews it (README.md, "How scaling runs"), so a
// scale-in holds its pool as long as its drains run, up to an hour, and a
// scale-in that stopped for any reason, its Release included, frees the
// pool minutes later rather than hours.
const ScaleInLease = 10 * time.Minute

// RenewLock extends a lease that owner still holds and has not let expire.
// A lost lease is a StateConflict: the caller must stop acting on the pool.
func (s *Store) RenewLock(ctx context.Context, pool, owner string, lease time.Duration) (Lease, error) {
	return s.renew(ctx, pool, lockKey, "lock", owner, lease)
}

// ReleaseLock frees the pool if owner holds the lock. It is idempotent:
// releasing a lock that is gone, or that another execution has taken over
// after expiry, changes nothing and reports released=false.
func (s *Store) ReleaseLock(ctx context.Context, pool, owner string) (released bool, err error) {
	return s.release(ctx, pool, lockKey, "lock", owner)
}

// loopKey holds a pool's pressure loop lease (README.md, "Decisions under
// pressure"): at most one loop per pool, owned by the loop execution's
// name, renewed by each of its rounds. It is apart from the pool lock,
// which the scaling executions the loop starts take in turn.
const loopKey = "LOOP"

// ClaimLoop takes the pool's pressure loop lease for owner, as
// AcquireLock takes the lock: LockHeld names a loop that still runs.
func (s *Store) ClaimLoop(ctx context.Context, pool, owner string, lease time.Duration) (Lease, error) {
	return s.acquire(ctx, pool, loopKey, "pressure loop", owner, lease)
}

// RenewLoop extends the loop lease owner holds; a lost lease is a
// StateConflict, and the loop must end.
func (s *Store) RenewLoop(ctx context.Context, pool, owner string, lease time.Duration) (Lease, error) {
	return s.renew(ctx, pool, loopKey, "pressure loop", owner, lease)
}

// EndLoop gives the loop lease back if owner holds it.
func (s *Store) EndLoop(ctx context.Context, pool, owner string) (bool, error) {
	return s.release(ctx, pool, loopKey, "pressure loop", owner)
}

// acquire takes the lease item sk of the pool for owner: when it is free,
// expired (take-over), or already owner's (a retried step).
func (s *Store) acquire(ctx context.Context, pool, sk, what, owner string, lease time.Duration) (Lease, error) {
	if owner == "" || lease <= 0 {
		return Lease{}, events.Invalid("taking %s of pool %s: owner and a positive lease are required", what, pool)
	}
	now := s.now().UTC()
	l := Lease{Pool: pool, Owner: owner, ExpiresAt: now.Add(lease)}
	item := key(poolKey(pool), sk)
	item["owner"] = str(owner)
	item["expiresAt"] = num(l.ExpiresAt.UnixMilli())
	item["acquiredAt"] = str(now.Format(time.RFC3339Nano))
	item[TTLAttribute] = num(l.ExpiresAt.Add(lockPurgeGrace).Unix())
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner"),
		ExpressionAttributeNames:            map[string]string{"#owner": "owner"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":owner": str(owner)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, lost := isConditionFailed(err); lost {
		holder := decodeLease(pool, old)
		if sk == lockKey {
			return Lease{}, events.Held("pool %s is locked by %s until %s", pool, holder.Owner, holder.ExpiresAt.Format(time.RFC3339))
		}
		return Lease{}, events.Held("pool %s's %s is held by %s until %s", pool, what, holder.Owner, holder.ExpiresAt.Format(time.RFC3339))
	}
	if err != nil {
		return Lease{}, fmt.Errorf("taking %s of pool %s: %w", what, pool, err)
	}
	return l, nil
}

func (s *Store) renew(ctx context.Context, pool, sk, what, owner string, lease time.Duration) (Lease, error) {
	now := s.now().UTC()
	l := Lease{Pool: pool, Owner: owner, ExpiresAt: now.Add(lease)}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(poolKey(pool), sk),
		UpdateExpression:         aws.String("SET expiresAt = :exp, #purge = :purge"),
		ConditionExpression:      aws.String("#owner = :owner AND expiresAt >= :now"),
		ExpressionAttributeNames: map[string]string{"#owner": "owner", "#purge": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp":   num(l.ExpiresAt.UnixMilli()),
			":purge": num(l.ExpiresAt.Add(lockPurgeGrace).Unix()),
			":owner": str(owner),
			":now":   num(now.UnixMilli()),
		},
	})
	if _, lost := isConditionFailed(err); lost {
		return Lease{}, events.Conflict(err, "pool %s: %s no longer holds the %s", pool, owner, what)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("renewing %s of pool %s: %w", what, pool, err)
	}
	return l, nil
}

func (s *Store) release(ctx context.Context, pool, sk, what, owner string) (released bool, err error) {
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       key(poolKey(pool), sk),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(owner)},
	})
	if _, lost := isConditionFailed(err); lost {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("releasing %s of pool %s: %w", what, pool, err)
	}
	return true, nil
}

// GetLock reads the pool lock; ok is false when there is none. An expired
// lease is returned as stored: callers compare ExpiresAt with their clock.
func (s *Store) GetLock(ctx context.Context, pool string) (l Lease, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(poolKey(pool), lockKey), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("reading lock of pool %s: %w", pool, err)
	}
	if out.Item == nil {
		return Lease{}, false, nil
	}
	return decodeLease(pool, out.Item), true, nil
}

func decodeLease(pool string, item map[string]types.AttributeValue) Lease {
	l := Lease{Pool: pool}
	if v, ok := item["owner"].(*types.AttributeValueMemberS); ok {
		l.Owner = v.Value
	}
	if v, ok := item["expiresAt"].(*types.AttributeValueMemberN); ok {
		if ms, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
			l.ExpiresAt = time.UnixMilli(ms).UTC()
		}
	}
	return l
}
