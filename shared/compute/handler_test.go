package compute

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// stateEC2 describes one instance in a fixed state.
type stateEC2 struct {
	EC2
	state types.InstanceStateName
}

func (s stateEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{{
		InstanceId: aws.String("i-1"), State: &types.InstanceState{Name: s.state}, PrivateIpAddress: aws.String("10.40.0.7"),
	}}}}}, nil
}

func TestCheckInstance(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		state    types.InstanceStateName
		deadline time.Time
		ready    bool
		node     fleet.State
		errName  string
	}{
		{"a running instance moves the node to DEPLOYING", types.InstanceStateNameRunning, now.Add(time.Minute), true, fleet.Deploying, ""},
		{"a pending instance keeps the workflow waiting", types.InstanceStateNamePending, now.Add(time.Minute), false, fleet.Provisioning, ""},
		{"an instance pending past its budget fails the node", types.InstanceStateNamePending, now.Add(-time.Second), false, fleet.Provisioning, events.ErrProvisionFailed},
		{"an instance that stopped while launching fails the node", types.InstanceStateNameStopped, now.Add(time.Minute), false, fleet.Provisioning, events.ErrProvisionFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "e1", State: fleet.Provisioning, InstanceID: "i-1", Deadline: tc.deadline})
			h := NewHandler(NewFleet(stateEC2{state: tc.state}, "dev"), store, pool.File{Environment: "dev", Pools: []pool.Pool{{Name: "live"}}},
				func() time.Time { return now }, telemetry.NewLogger(io.Discard, "provision"))
			raw, _ := json.Marshal(Request{Action: ActionCheck, Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "e1"}})
			res, err := h.Handle()(context.Background(), raw)
			if tc.errName != "" {
				var named events.Named
				if !errors.As(err, &named) || named.ErrorName() != tc.errName {
					t.Fatalf("err = %v, want %s", err, tc.errName)
				}
			} else if err != nil || res.Ready != tc.ready || res.WaitSeconds < 1 {
				t.Fatalf("res = %+v, err = %v", res, err)
			}
			if n := store.Node("live", "n-1"); n.State != tc.node {
				t.Fatalf("node %s, want %s", n.State, tc.node)
			}
		})
	}
}
