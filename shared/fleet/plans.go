package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mediascale/mediascale/events"
)

// planKeep is how long a scale-out's plan is kept: far longer than any
// execution that could retry its plan step.
const planKeep = 7 * 24 * time.Hour

// RecordPlan keeps a scale-out's plan before any of its nodes is written,
// so a plan step that dies half way and is retried finishes the same plan
// instead of planning again from the nodes it managed to write. It returns
// the plan on record: the given one, or the one an earlier attempt of the
// same execution recorded.
func (s *Store) RecordPlan(ctx context.Context, plan events.Plan) (events.Plan, error) {
	body, err := json.Marshal(plan)
	if err != nil {
		return events.Plan{}, fmt.Errorf("encoding the plan of %s: %w", plan.Execution, err)
	}
	item := key(poolKey(plan.Pool), planPrefix+plan.Execution)
	item["plan"] = str(string(body))
	item[TTLAttribute] = num(s.now().Add(planKeep).Unix())
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	// A lost condition returns the plan on record (ALL_OLD).
	if old, lost := isConditionFailed(err); lost {
		return decodePlan(old)
	}
	if err != nil {
		return events.Plan{}, fmt.Errorf("recording the plan of %s: %w", plan.Execution, err)
	}
	return plan, nil
}

func decodePlan(item map[string]types.AttributeValue) (events.Plan, error) {
	v, ok := item["plan"].(*types.AttributeValueMemberS)
	if !ok {
		return events.Plan{}, fmt.Errorf("a recorded plan without its body")
	}
	var p events.Plan
	if err := json.Unmarshal([]byte(v.Value), &p); err != nil {
		return events.Plan{}, fmt.Errorf("decoding a recorded plan: %w", err)
	}
	return p, nil
}
