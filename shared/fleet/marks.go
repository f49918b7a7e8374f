package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
)

// MarkScaled records that a pool scaled in a direction ("out" or "in") at
// a time, for the cooldown check of later alarms. A mark never moves
// backwards: an older event replayed late cannot shorten a cooldown.
func (s *Store) MarkScaled(ctx context.Context, pool, direction string, at time.Time, execution string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(poolKey(pool), scaledPrefix+direction),
		UpdateExpression:         aws.String("SET #at = :at, #execution = :execution"),
		ConditionExpression:      aws.String("attribute_not_exists(#at) OR #at < :at"),
		ExpressionAttributeNames: map[string]string{"#at": "at", "#execution": "execution"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at":        num(at.UnixMilli()),
			":execution": str(execution),
		},
	})
	if _, lost := isConditionFailed(err); lost {
		return nil
	}
	if err != nil {
		return fmt.Errorf("marking pool %s scaled %s: %w", pool, direction, err)
	}
	return nil
}

// LastScaled returns when the pool last scaled in a direction; ok is false
// if it never has.
func (s *Store) LastScaled(ctx context.Context, pool, direction string) (at time.Time, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(poolKey(pool), scaledPrefix+direction), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading last scale-%s of pool %s: %w", direction, pool, err)
	}
	v, found := out.Item["at"].(*types.AttributeValueMemberN)
	if !found {
		return time.Time{}, false, nil
	}
	ms, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("pool %s: scale-%s mark %q is not a number", pool, direction, v.Value)
	}
	return time.UnixMilli(ms).UTC(), true, nil
}

// MarkOnce records a dedupe key for the given time to live and reports
// whether this call was the first to do so. A mark past its expiry counts as
// absent even before DynamoDB's TTL sweeper has removed it, because the
// sweeper may lag by hours.
func (s *Store) MarkOnce(ctx context.Context, dedupeKey string, ttl time.Duration) (first bool, err error) {
	now := s.now().UTC()
	item := key(dedupePrefix+dedupeKey, dedupePrefix)
	item["markedAt"] = str(now.Format(time.RFC3339Nano))
	item[TTLAttribute] = num(now.Add(ttl).Unix())
	token := uuid.NewString()
	item[writeAttr] = str(token)
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #purge < :now"),
		ExpressionAttributeNames:            map[string]string{"#purge": TTLAttribute},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.Unix())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, lost := isConditionFailed(err); lost {
		// A retry of this call's own put, whose answer was lost, finds the
		// mark it wrote: the event is still seen for the first time.
		return ownWrite(old, token), nil
	}
	if err != nil {
		return false, fmt.Errorf("marking %s: %w", dedupeKey, err)
	}
	return true, nil
}

// Unmark removes a dedupe mark, so a redelivery of the event is handled as
// new: the trigger calls it when its decision failed after the mark was
// written, or the event would be lost as a "duplicate".
func (s *Store) Unmark(ctx context.Context, dedupeKey string) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(dedupePrefix+dedupeKey, dedupePrefix)}); err != nil {
		return fmt.Errorf("removing the mark of %s: %w", dedupeKey, err)
	}
	return nil
}

// statusKey holds operator settings of a pool.
const statusKey = "STATUS"

// PoolStatus is what operators set on a pool.
type PoolStatus struct {
	Paused   bool
	Reason   string
	Operator string
	Since    time.Time
}

// SetPaused pauses or resumes a pool. While paused, alarms are recorded
// and ignored.
func (s *Store) SetPaused(ctx context.Context, pool string, paused bool, reason, operator string) error {
	item := key(poolKey(pool), statusKey)
	item["paused"] = &types.AttributeValueMemberBOOL{Value: paused}
	item["reason"] = str(reason)
	item["operator"] = str(operator)
	item["since"] = str(s.now().UTC().Format(time.RFC3339Nano))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("setting pool %s paused=%v: %w", pool, paused, err)
	}
	return nil
}

// Status reads a pool's operator settings; a pool never touched is running.
func (s *Store) Status(ctx context.Context, pool string) (PoolStatus, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(poolKey(pool), statusKey), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return PoolStatus{}, fmt.Errorf("reading status of pool %s: %w", pool, err)
	}
	var st PoolStatus
	if v, ok := out.Item["paused"].(*types.AttributeValueMemberBOOL); ok {
		st.Paused = v.Value
	}
	if v, ok := out.Item["reason"].(*types.AttributeValueMemberS); ok {
		st.Reason = v.Value
	}
	if v, ok := out.Item["operator"].(*types.AttributeValueMemberS); ok {
		st.Operator = v.Value
	}
	if v, ok := out.Item["since"].(*types.AttributeValueMemberS); ok {
		st.Since, _ = time.Parse(time.RFC3339Nano, v.Value)
	}
	return st, nil
}

// cancelPrefix marks a scale-in execution whose drains must stop.
const cancelPrefix = "CANCEL#"

// CancelDrains asks a scale-in execution to stop draining and put its
// nodes back into service. The mark expires with the lock's lease.
func (s *Store) CancelDrains(ctx context.Context, pool, execution, by string) error {
	item := key(poolKey(pool), cancelPrefix+execution)
	item["by"] = str(by)
	item["at"] = str(s.now().UTC().Format(time.RFC3339Nano))
	item[TTLAttribute] = num(s.now().Add(24 * time.Hour).Unix())
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("cancelling the drains of %s: %w", execution, err)
	}
	return nil
}

// DrainsCancelled reports whether the execution was asked to stop draining.
func (s *Store) DrainsCancelled(ctx context.Context, pool, execution string) (bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(poolKey(pool), cancelPrefix+execution), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("reading the cancel mark of %s: %w", execution, err)
	}
	return out.Item != nil, nil
}
