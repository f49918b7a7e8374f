package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/mediascale/mediascale/events"
)

// Table layout. Everything about a pool shares the partition POOL#<pool>, so
// one Query reads a pool's nodes and no hot path ever scans. TTLAttribute
// holds epoch seconds after which DynamoDB may delete an item; it is set on
// dedupe marks, locks and plans only.
const (
	PartitionKey = "pk"
	SortKey      = "sk"
	TTLAttribute = "purgeAt"

	nodePrefix   = "NODE#"
	lockKey      = "LOCK"
	scaledPrefix = "SCALED#"
	dedupePrefix = "DEDUPE#"
	planPrefix   = "PLAN#"
)

// DynamoDB is the part of the DynamoDB client the store uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store reads and writes the node table.
type Store struct {
	db    DynamoDB
	table string
	now   func() time.Time
}

// NewStore returns a store over one table; now is the clock every
// timestamp and expiry is read from.
func NewStore(db DynamoDB, table string, now func() time.Time) *Store {
	return &Store{db: db, table: table, now: now}
}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Node is one EC2 instance's record.
type Node struct {
	Pool         string    `dynamodbav:"pool"`
	ID           string    `dynamodbav:"node"`
	State        State     `dynamodbav:"state"`
	Version      int64     `dynamodbav:"version"`
	InstanceID   string    `dynamodbav:"instanceId,omitempty"`
	InstanceType string    `dynamodbav:"instanceType,omitempty"`
	AZ           string    `dynamodbav:"az,omitempty"`
	Subnet       string    `dynamodbav:"subnet,omitempty"`
	PrivateIP    string    `dynamodbav:"privateIp,omitempty"`
	Endpoint     string    `dynamodbav:"endpoint,omitempty"`
	Weight       int       `dynamodbav:"weight"`
	Execution    string    `dynamodbav:"execution,omitempty"`
	Command      string    `dynamodbav:"command,omitempty"`
	Reason       string    `dynamodbav:"reason,omitempty"`
	Deadline     time.Time `dynamodbav:"deadline,omitempty"`
	CreatedAt    time.Time `dynamodbav:"createdAt"`
	UpdatedAt    time.Time `dynamodbav:"updatedAt"`
	// ForcedSessions is how many sessions were still open when a drain
	// gave up waiting and closed them; nil until a drain ends.
	ForcedSessions *int `dynamodbav:"forcedSessions,omitempty"`
	// Heartbeat is the node agent's last report; nil until it has sent one.
	Heartbeat *Heartbeat `dynamodbav:"heartbeat,omitempty"`
	// Goal is what the node's execution takes it to (events.GoalServe,
	// GoalWarm or GoalRetire); empty is GoalServe.
	Goal string `dynamodbav:"goal,omitempty"`
	// Revision is the pool's revision (pool.Pool.Revision) the node was
	// built from: a warm node of another revision is never started.
	Revision string `dynamodbav:"revision,omitempty"`
	// HealthFailures counts the node's failed health checks in a row
	// while it serves; UnhealthyAt is when they took it out of service.
	HealthFailures int       `dynamodbav:"healthFailures,omitempty"`
	UnhealthyAt    time.Time `dynamodbav:"unhealthyAt,omitempty"`
}

// Serving reports whether the node counts towards the pool's capacity: on
// its way into service or in service. A node launched to be parked in the
// warm pool does not.
func (n Node) Serving() bool {
	return n.State.Serving() && n.Goal != events.GoalWarm
}

// Change is what a write sets besides state, version and updatedAt. Empty
// strings, nil pointers and zero times leave a field as it is.
type Change struct {
	InstanceID     string
	InstanceType   string
	AZ             string
	Subnet         string
	PrivateIP      string
	Endpoint       string
	Execution      string
	Command        string
	Reason         string
	Goal           string
	Weight         *int
	Deadline       time.Time
	ForcedSessions *int
	UnhealthyAt    time.Time
}

func poolKey(pool string) string { return "POOL#" + pool }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		PartitionKey: &types.AttributeValueMemberS{Value: pk},
		SortKey:      &types.AttributeValueMemberS{Value: sk},
	}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// isConditionFailed reports whether err is a lost conditional write and
// returns the item as it was, when DynamoDB sent it back.
func isConditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// CreateNode writes a new node in PENDING at version 1. It fails with
// StateConflict if a node with that id already exists in the pool.
func (s *Store) CreateNode(ctx context.Context, n Node) (Node, error) {
	if n.Pool == "" || n.ID == "" {
		return Node{}, events.Invalid("creating node: pool and node id are required")
	}
	now := s.now().UTC()
	n.State, n.Version, n.CreatedAt, n.UpdatedAt = Pending, 1, now, now
	item, err := attributevalue.MarshalMap(n)
	if err != nil {
		return Node{}, fmt.Errorf("encoding node %s: %w", n.ID, err)
	}
	for k, v := range key(poolKey(n.Pool), nodePrefix+n.ID) {
		item[k] = v
	}
	token := uuid.NewString()
	item[writeAttr] = str(token)
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, lost := isConditionFailed(err); lost {
		// The SDK retries a put whose answer was lost on the way back; the
		// retry then finds the item the first attempt wrote, which is this
		// call's own write, not a conflict.
		if ownWrite(old, token) {
			return decodeNode(old)
		}
		return Node{}, events.Conflict(err, "node %s/%s already exists", n.Pool, n.ID)
	}
	if err != nil {
		return Node{}, fmt.Errorf("creating node %s/%s: %w", n.Pool, n.ID, err)
	}
	return n, nil
}

// GetNode reads one node; a missing one is ErrNotFound.
func (s *Store) GetNode(ctx context.Context, pool, id string) (Node, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key(poolKey(pool), nodePrefix+id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Node{}, fmt.Errorf("reading node %s/%s: %w", pool, id, err)
	}
	if out.Item == nil {
		return Node{}, fmt.Errorf("node %s/%s: %w", pool, id, ErrNotFound)
	}
	return decodeNode(out.Item)
}

// ListNodes returns every node of a pool, terminal ones included, with one
// consistent Query per page.
func (s *Store) ListNodes(ctx context.Context, pool string) ([]Node, error) {
	var nodes []Node
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     str(poolKey(pool)),
			":prefix": str(nodePrefix),
		},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing nodes of pool %s: %w", pool, err)
		}
		for _, item := range page.Items {
			n, err := decodeNode(item)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, n)
		}
	}
	return nodes, nil
}

func decodeNode(item map[string]types.AttributeValue) (Node, error) {
	var n Node
	if err := attributevalue.UnmarshalMap(item, &n); err != nil {
		return Node{}, fmt.Errorf("decoding node record: %w", err)
	}
	return n, nil
}

// Transition moves a node from one state to another and applies a change,
// only if the node is still in state from at the given version. A move not
// in the transition table is refused before anything is written; a lost
// race is a StateConflict that says what the node was found as.
func (s *Store) Transition(ctx context.Context, pool, id string, from State, version int64, to State, c Change) (Node, error) {
	if !CanTransition(from, to) {
		return Node{}, events.Invalid("node %s/%s: transition %s -> %s is not allowed", pool, id, from, to)
	}
	return s.write(ctx, pool, id, from, version, to, c)
}

// Update applies a change without moving the node, only if it is still in
// the given state at the given version (for example a weight change while
// SHIFTING).
func (s *Store) Update(ctx context.Context, pool, id string, state State, version int64, c Change) (Node, error) {
	return s.write(ctx, pool, id, state, version, state, c)
}

func (s *Store) write(ctx context.Context, pool, id string, from State, version int64, to State, c Change) (Node, error) {
	token := uuid.NewString()
	names := map[string]string{"#state": "state", "#version": "version", "#updatedAt": "updatedAt", "#write": writeAttr}
	values := map[string]types.AttributeValue{
		":from":    str(string(from)),
		":to":      str(string(to)),
		":version": num(version),
		":next":    num(version + 1),
		":now":     str(s.now().UTC().Format(time.RFC3339Nano)),
		":write":   str(token),
	}
	set := "SET #state = :to, #version = :next, #updatedAt = :now, #write = :write"
	add := func(attr string, v types.AttributeValue) {
		names["#"+attr] = attr
		values[":"+attr] = v
		set += fmt.Sprintf(", #%s = :%s", attr, attr)
	}
	for attr, v := range map[string]string{
		"instanceId": c.InstanceID, "instanceType": c.InstanceType, "az": c.AZ,
		"subnet": c.Subnet, "privateIp": c.PrivateIP, "endpoint": c.Endpoint,
		"execution": c.Execution, "command": c.Command, "reason": c.Reason, "goal": c.Goal,
	} {
		if v != "" {
			add(attr, str(v))
		}
	}
	if c.Weight != nil {
		add("weight", num(int64(*c.Weight)))
	}
	if c.ForcedSessions != nil {
		add("forcedSessions", num(int64(*c.ForcedSessions)))
	}
	if !c.Deadline.IsZero() {
		add("deadline", str(c.Deadline.UTC().Format(time.RFC3339Nano)))
	}
	if !c.UnhealthyAt.IsZero() {
		add("unhealthyAt", str(c.UnhealthyAt.UTC().Format(time.RFC3339Nano)))
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 key(poolKey(pool), nodePrefix+id),
		UpdateExpression:                    &set,
		ConditionExpression:                 aws.String("#state = :from AND #version = :version"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, lost := isConditionFailed(err); lost {
		// A retry of an update whose answer was lost finds the node as
		// this call's first attempt left it: that is its result.
		if ownWrite(old, token) {
			return decodeNode(old)
		}
		return Node{}, events.Conflict(err, "node %s/%s: expected %s at version %d, %s", pool, id, from, version, describeFound(old))
	}
	if err != nil {
		return Node{}, fmt.Errorf("writing node %s/%s (%s -> %s): %w", pool, id, from, to, err)
	}
	return decodeNode(out.Attributes)
}

// writeAttr holds a token unique to the call that last wrote a node, so a
// retried write can tell its own first attempt from another writer's.
const writeAttr = "writeId"

func ownWrite(old map[string]types.AttributeValue, token string) bool {
	v, ok := old[writeAttr].(*types.AttributeValueMemberS)
	return ok && v.Value == token
}

func describeFound(old map[string]types.AttributeValue) string {
	if old == nil {
		return "found another state or version (or no such node)"
	}
	n, err := decodeNode(old)
	if err != nil {
		return "found a record that does not decode"
	}
	return fmt.Sprintf("found %s at version %d", n.State, n.Version)
}
