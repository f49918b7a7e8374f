package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mediascale/mediascale/events"
)

// showPrefix starts the sort key of a show an operator announced
// (README.md, "Announced shows"): SHOW#<id> in the pool's partition.
const showPrefix = "SHOW#"

// showPurgeGrace keeps a show's record a day past its start for
// inspection; the TTL sweeper removes it after that.
const showPurgeGrace = 24 * time.Hour

// Show is a show an operator announced: its audience of about Peak
// sessions arrives at Start over Ramp. A cancelled show keeps its record,
// and raises no floor.
type Show struct {
	Pool        string    `dynamodbav:"pool" json:"pool"`
	ID          string    `dynamodbav:"id" json:"id"`
	Start       time.Time `dynamodbav:"start" json:"start"`
	Peak        int       `dynamodbav:"peak" json:"peak"`
	RampSeconds int       `dynamodbav:"rampSeconds,omitempty" json:"rampSeconds,omitempty"`
	By          string    `dynamodbav:"by" json:"by"`
	Reason      string    `dynamodbav:"reason,omitempty" json:"reason,omitempty"`
	AnnouncedAt time.Time `dynamodbav:"announcedAt" json:"announcedAt"`
	// Cancelled is set when an operator called the show off, by whom.
	CancelledBy string     `dynamodbav:"cancelledBy,omitempty" json:"cancelledBy,omitempty"`
	CancelledAt *time.Time `dynamodbav:"cancelledAt,omitempty" json:"cancelledAt,omitempty"`
}

// Ramp is how long the show's audience takes to arrive.
func (s Show) Ramp() time.Duration { return time.Duration(s.RampSeconds) * time.Second }

// Cancelled reports whether the show was called off.
func (s Show) Cancelled() bool { return s.CancelledAt != nil }

// AnnounceShow records a show. An announcement with the ID of one already
// recorded is a StateConflict: a show is cancelled and announced anew,
// never changed in place.
func (s *Store) AnnounceShow(ctx context.Context, sh Show) (Show, error) {
	if sh.AnnouncedAt.IsZero() {
		sh.AnnouncedAt = s.now().UTC()
	}
	item, err := attributevalue.MarshalMap(sh)
	if err != nil {
		return Show{}, fmt.Errorf("encoding show %s: %w", sh.ID, err)
	}
	for k, v := range key(poolKey(sh.Pool), showPrefix+sh.ID) {
		item[k] = v
	}
	item[TTLAttribute] = num(sh.Start.Add(sh.Ramp() + showPurgeGrace).Unix())
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if _, lost := isConditionFailed(err); lost {
		return Show{}, events.Conflict(err, "pool %s already has a show %s: cancel it and announce a new one", sh.Pool, sh.ID)
	}
	if err != nil {
		return Show{}, fmt.Errorf("recording show %s of pool %s: %w", sh.ID, sh.Pool, err)
	}
	return sh, nil
}

// Shows lists the pool's announced shows, cancelled ones included, in the
// order of their IDs.
func (s *Store) Shows(ctx context.Context, pool string) ([]Show, error) {
	var out []Show
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(poolKey(pool)), ":prefix": str(showPrefix),
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the shows of pool %s: %w", pool, err)
		}
		for _, item := range page.Items {
			var sh Show
			if err := attributevalue.UnmarshalMap(item, &sh); err != nil {
				return nil, fmt.Errorf("decoding a show of pool %s: %w", pool, err)
			}
			out = append(out, sh)
		}
	}
	return out, nil
}

// CancelShow calls a show off: it stays on record, raising no floor. A
// show that does not exist is InvalidInput; cancelling twice changes
// nothing and reports cancelled=false.
func (s *Store) CancelShow(ctx context.Context, pool, id, by string) (cancelled bool, err error) {
	now := s.now().UTC()
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 key(poolKey(pool), showPrefix+id),
		UpdateExpression:                    aws.String("SET cancelledBy = :by, cancelledAt = :at"),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND attribute_not_exists(cancelledAt)"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":by": str(by), ":at": str(now.Format(time.RFC3339Nano))},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, lost := isConditionFailed(err); lost {
		if len(old) == 0 {
			return false, events.Invalid("pool %s has no show %s", pool, id)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cancelling show %s of pool %s: %w", id, pool, err)
	}
	return true, nil
}
