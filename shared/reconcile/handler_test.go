package reconcile

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
	"github.com/mediascale/mediascale/shared/traffic"
)

// unlocked is the node table with no pool lock held.
type unlocked struct{ *fleettest.Memory }

func (unlocked) GetLock(context.Context, string) (fleet.Lease, bool, error) {
	return fleet.Lease{}, false, nil
}

type fakeInstances struct {
	running    []compute.Tagged
	terminated []string
}

func (f *fakeInstances) Tagged(context.Context, string) ([]compute.Tagged, error) {
	return f.running, nil
}
func (f *fakeInstances) FindByNode(context.Context, string) (compute.Launched, bool, error) {
	return compute.Launched{}, false, nil
}
func (f *fakeInstances) Terminate(_ context.Context, id string) error {
	f.terminated = append(f.terminated, id)
	return nil
}

// ended says every execution has ended, as Step Functions does for one it
// no longer knows.
type ended struct{}

func (ended) DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	return &sfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusSucceeded}, nil
}

type noMetrics struct{}

func (noMetrics) PutMetricData(context.Context, *cloudwatch.PutMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	return &cloudwatch.PutMetricDataOutput{}, nil
}

type records struct{ removed []string }

func (r *records) SetWeight(context.Context, pool.Pool, string, string, int) error { return nil }
func (r *records) Remove(_ context.Context, _ pool.Pool, node, _ string) error {
	r.removed = append(r.removed, node)
	return nil
}

// reconcileDrain runs the reconciler once over a Route53 pool whose node
// n-1, its instance running, belongs to a scale-in that has ended, and
// returns the instances and records it acted on.
func reconcileDrain(t *testing.T, store *fleettest.Memory) (*fakeInstances, *records) {
	t.Helper()
	inst := &fakeInstances{running: []compute.Tagged{{ID: "i-1", Node: "n-1", State: "running", Launched: time.Now().Add(-time.Hour)}}}
	rec := &records{}
	p := pool.Pool{Name: "live", Traffic: pool.Traffic{Mode: pool.TrafficRoute53}}
	h := NewHandler(unlocked{store}, inst, func(string) (traffic.Weights, error) { return rec, nil }, ended{}, noMetrics{},
		[]string{"arn:aws:states:us-east-1:123456789012:stateMachine:mediascale-dev-scale-in"}, pool.File{Environment: "dev", Pools: []pool.Pool{p}},
		15*time.Minute, 30*time.Minute, time.Now, telemetry.NewLogger(io.Discard, "reconcile"))
	if _, err := h.Handle()(context.Background(), json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	return inst, rec
}

func TestADrainLeftStuckLosesItsRecordAsWellAsItsInstance(t *testing.T) {
	// The drain claimed the node, then could not take its record away,
	// and its execution ended.
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", State: fleet.Draining, Execution: "live-in-1", InstanceID: "i-1", Weight: 0})
	inst, rec := reconcileDrain(t, store)
	if n := store.Node("live", "n-1"); n.State != fleet.Terminated || len(rec.removed) != 1 || len(inst.terminated) != 1 {
		t.Fatalf("node %s, records removed %v, instances terminated %v", n.State, rec.removed, inst.terminated)
	}
}

func TestADrainWhoseScaleInEndedGoesOnUntilItsDeadline(t *testing.T) {
	// The scale-in was stopped mid-drain; its node still carries live
	// sessions and its record weight 100 (the drain's Route53 call had
	// failed).
	deadline := time.Now().Add(10 * time.Minute)
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", State: fleet.Draining, Execution: "live-in-1", InstanceID: "i-1", Weight: 100, Deadline: deadline})
	inst, rec := reconcileDrain(t, store)
	if n := store.Node("live", "n-1"); n.State != fleet.Draining || len(rec.removed) != 1 || len(inst.terminated) != 0 {
		t.Fatalf("before the deadline: node %s, records removed %v, instances terminated %v; want it draining on with its traffic off", n.State, rec.removed, inst.terminated)
	}
}
