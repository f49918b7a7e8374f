package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Load is what a node carries, or a pool in total: live sessions, CPU in
// percent of the whole machine, and media bandwidth in and out.
type Load struct {
	Connections   float64 `dynamodbav:"connections" json:"connections"`
	CPUPercent    float64 `dynamodbav:"cpuPercent" json:"cpuPercent"`
	BandwidthMbps float64 `dynamodbav:"bandwidthMbps" json:"bandwidthMbps"`
}

// Add returns the sum of two loads.
func (l Load) Add(o Load) Load {
	return Load{Connections: l.Connections + o.Connections, CPUPercent: l.CPUPercent + o.CPUPercent, BandwidthMbps: l.BandwidthMbps + o.BandwidthMbps}
}

// Times returns the load n times over.
func (l Load) Times(n float64) Load {
	return Load{Connections: n * l.Connections, CPUPercent: n * l.CPUPercent, BandwidthMbps: n * l.BandwidthMbps}
}

// Heartbeat is the node agent's last word on its node: when, whether the
// media server answered, and the load it read.
type Heartbeat struct {
	At      time.Time `dynamodbav:"at" json:"at"`
	Healthy bool      `dynamodbav:"healthy" json:"healthy"`
	// Reason says why an unhealthy node is unhealthy.
	Reason string `dynamodbav:"reason,omitempty" json:"reason,omitempty"`
	Load   Load   `dynamodbav:"load" json:"load"`
}

// Fresh reports whether the heartbeat is recent enough to act on.
func (h *Heartbeat) Fresh(now time.Time, maxAge time.Duration) bool {
	return h != nil && now.Sub(h.At) <= maxAge
}

// heartbeatStates are the states in which a node's agent may report: the
// media server runs from the probe on until the node is gone. A heartbeat
// on a node in any other state is refused, so an agent that outlives its
// node never brings a TERMINATED or FAILED record back.
var heartbeatStates = []State{Probing, Shifting, Active, Draining}

// ErrNotReporting is returned to an agent whose node is not (or no longer)
// in a state that takes heartbeats.
var ErrNotReporting = fmt.Errorf("node is not in service: heartbeat refused")

// Heartbeat writes an agent's heartbeat onto its node's record and returns
// the node's state. It changes neither the state nor the version, so it
// never races a workflow step that owns the node; it is conditional on the
// record existing in a state that takes heartbeats.
func (s *Store) Heartbeat(ctx context.Context, pool, id string, hb Heartbeat) (State, error) {
	av, err := attributevalue.Marshal(hb)
	if err != nil {
		return "", fmt.Errorf("encoding heartbeat of %s/%s: %w", pool, id, err)
	}
	values := map[string]types.AttributeValue{":hb": av}
	cond := "attribute_exists(pk) AND #state IN ("
	for i, st := range heartbeatStates {
		k := fmt.Sprintf(":s%d", i)
		values[k] = str(string(st))
		if i > 0 {
			cond += ", "
		}
		cond += k
	}
	cond += ")"
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(poolKey(pool), nodePrefix+id),
		UpdateExpression:          aws.String("SET #hb = :hb"),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  map[string]string{"#hb": "heartbeat", "#state": "state"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if _, lost := isConditionFailed(err); lost {
		return "", fmt.Errorf("node %s/%s: %w", pool, id, ErrNotReporting)
	}
	if err != nil {
		return "", fmt.Errorf("writing heartbeat of %s/%s: %w", pool, id, err)
	}
	n, err := decodeNode(out.Attributes)
	return n.State, err
}

// Sample is one reading of a pool's total load by the controller: the sum
// over the nodes that reported, how many did, and how many nodes the pool
// counted as capacity then.
type Sample struct {
	At        time.Time `dynamodbav:"at" json:"at"`
	Load      Load      `dynamodbav:"load" json:"load"`
	Reporting int       `dynamodbav:"reporting" json:"reporting"`
	Capacity  int       `dynamodbav:"capacity" json:"capacity"`
}

// windowKey holds a pool's recent load samples: the controller's sliding
// window, which scale-in stabilization reads.
const windowKey = "WINDOW"

// Decision is the controller's last word on a pool, kept beside its window
// for operators (msctl fleet, the demo's timeline).
type Decision struct {
	At        time.Time `dynamodbav:"at" json:"at"`
	Direction string    `dynamodbav:"direction" json:"direction"`
	Current   int       `dynamodbav:"current" json:"current"`
	Desired   int       `dynamodbav:"desired" json:"desired"`
	Reason    string    `dynamodbav:"reason" json:"reason"`
}

// windowItem is the stored form of a pool's window.
type windowItem struct {
	Samples  []Sample  `dynamodbav:"samples"`
	Decision *Decision `dynamodbav:"decision,omitempty"`
}

func (s *Store) window(ctx context.Context, pool string) (windowItem, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(poolKey(pool), windowKey), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return windowItem{}, fmt.Errorf("reading the load window of pool %s: %w", pool, err)
	}
	var w windowItem
	if err := attributevalue.UnmarshalMap(out.Item, &w); err != nil {
		return windowItem{}, fmt.Errorf("decoding the load window of pool %s: %w", pool, err)
	}
	sort.Slice(w.Samples, func(i, j int) bool { return w.Samples[i].At.Before(w.Samples[j].At) })
	return w, nil
}

// Window returns a pool's load samples, oldest first.
func (s *Store) Window(ctx context.Context, pool string) ([]Sample, error) {
	w, err := s.window(ctx, pool)
	return w.Samples, err
}

// LastDecision returns the controller's last decision on a pool; ok is
// false before its first.
func (s *Store) LastDecision(ctx context.Context, pool string) (d Decision, ok bool, err error) {
	w, err := s.window(ctx, pool)
	if err != nil || w.Decision == nil {
		return Decision{}, false, err
	}
	return *w.Decision, true, nil
}

// maxWindowSamples bounds the window item far below DynamoDB's 400 KB item
// limit (a sample is about 120 bytes): a one-hour window read every 10 s.
const maxWindowSamples = 400

// AppendSample is the window after a new sample: the samples of the last
// keep before it, in time order, at most maxWindowSamples of them. The
// simulator keeps its windows with it too.
func AppendSample(prior []Sample, sample Sample, keep time.Duration) []Sample {
	cutoff := sample.At.Add(-keep)
	kept := make([]Sample, 0, len(prior)+1)
	for _, x := range prior {
		if x.At.After(cutoff) && !x.At.Equal(sample.At) {
			kept = append(kept, x)
		}
	}
	kept = append(kept, sample)
	sort.Slice(kept, func(i, j int) bool { return kept[i].At.Before(kept[j].At) })
	if len(kept) > maxWindowSamples {
		kept = kept[len(kept)-maxWindowSamples:]
	}
	return kept
}

// RecordSample writes the pool's window as prior (the samples the caller
// read with Window for its decision, so a decision reads the item once)
// plus sample, in time order, without the ones older than keep before it,
// and keeps the decision made on it. Two controllers recording at once may
// each lose the other's sample; both read the same moment, so the window
// loses nothing it needs.
func (s *Store) RecordSample(ctx context.Context, pool string, prior []Sample, sample Sample, keep time.Duration, decision Decision) error {
	kept := AppendSample(prior, sample, keep)
	if decision.At.IsZero() {
		decision.At = sample.At
	}
	item, err := attributevalue.MarshalMap(windowItem{Samples: kept, Decision: &decision})
	if err != nil {
		return fmt.Errorf("encoding the load window of pool %s: %w", pool, err)
	}
	for k, v := range key(poolKey(pool), windowKey) {
		item[k] = v
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("recording a load sample of pool %s: %w", pool, err)
	}
	return nil
}
