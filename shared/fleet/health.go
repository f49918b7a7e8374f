package fleet

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mediascale/mediascale/events"
)

// HealerOwner is the execution field of a node the health checker took
// out of service: no state machine owns it, the checker drains and
// terminates it on its own schedule.
const HealerOwner = "healer"

// SetHealthFailures records how many health checks in a row an ACTIVE node
// has failed. It leaves the node's version alone: the count is the health
// checker's own bookkeeping, and a workflow step holding the node's
// version must not lose its write to it. ok is false when the node is no
// longer ACTIVE, and then nothing is written.
func (s *Store) SetHealthFailures(ctx context.Context, pool, id string, failures int) (ok bool, err error) {
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(poolKey(pool), nodePrefix+id),
		UpdateExpression:          aws.String("SET #failures = :n"),
		ConditionExpression:       aws.String("#state = :active"),
		ExpressionAttributeNames:  map[string]string{"#failures": "healthFailures", "#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(failures)), ":active": str(string(Active))},
	})
	if _, lost := isConditionFailed(err); lost {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording %d failed health checks of node %s/%s: %w", failures, pool, id, err)
	}
	return true, nil
}

// MarkReplaced records that a scale-out was started to replace a node
// taken out as unhealthy, so the controller stops owing it. Marking a
// node twice, or one no longer owed, changes nothing.
func (s *Store) MarkReplaced(ctx context.Context, pool, id, execution string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(poolKey(pool), nodePrefix+id),
		UpdateExpression:         aws.String("SET #goal = :replaced, #by = :execution"),
		ConditionExpression:      aws.String("#goal = :replace"),
		ExpressionAttributeNames: map[string]string{"#goal": "goal", "#by": "replacedBy"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":replaced": str(events.GoalReplaced), ":replace": str(events.GoalReplace), ":execution": str(execution),
		},
	})
	if _, lost := isConditionFailed(err); lost {
		return nil
	}
	if err != nil {
		return fmt.Errorf("marking node %s/%s replaced by %s: %w", pool, id, execution, err)
	}
	return nil
}
