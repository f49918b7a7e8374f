package compute

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// fakeEC2 answers RunInstances with capacity errors for the listed
// type/subnet pairs and records every call.
type fakeEC2 struct {
	EC2
	noCapacity map[string]bool // "type|subnet"
	runs       []*ec2.RunInstancesInput
}

func (f *fakeEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.runs = append(f.runs, in)
	if f.noCapacity[string(in.InstanceType)+"|"+aws.ToString(in.SubnetId)] {
		return nil, &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "We currently do not have sufficient capacity"}
	}
	return &ec2.RunInstancesOutput{Instances: []types.Instance{{InstanceId: aws.String("i-0fake")}}}, nil
}

func (f *fakeEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{}, nil
}

func testPool() pool.Pool {
	return pool.Pool{
		Name:           "live",
		LaunchTemplate: pool.LaunchTemplate{ID: "lt-0123456789abcdef0", Version: "3"},
		InstanceTypes:  []string{"c7gn.xlarge", "c7g.xlarge"},
		Placement:      []pool.Placement{{AZ: "us-east-1a", Subnet: "subnet-a"}, {AZ: "us-east-1b", Subnet: "subnet-b"}},
	}
}

func TestLaunchFallsBackAlongTypesThenZones(t *testing.T) {
	p := testPool()
	task := events.NodeTask{Pool: "live", Node: "n-1", AZ: "us-east-1b", Subnet: "subnet-b", InstanceTypes: p.InstanceTypes}
	cases := []struct {
		name     string
		full     []string
		wantType string
		wantAZ   string
		tries    int
		err      string
	}{
		{"the preferred type in the planned zone is used when it has capacity", nil, "c7gn.xlarge", "us-east-1b", 1, ""},
		{"no capacity for the first type moves to the second", []string{"c7gn.xlarge|subnet-b"}, "c7g.xlarge", "us-east-1b", 2, ""},
		{"no capacity for any type in the zone moves to the next zone", []string{"c7gn.xlarge|subnet-b", "c7g.xlarge|subnet-b"}, "c7gn.xlarge", "us-east-1a", 3, ""},
		{"no capacity anywhere is InsufficientCapacity naming each try",
			[]string{"c7gn.xlarge|subnet-b", "c7g.xlarge|subnet-b", "c7gn.xlarge|subnet-a", "c7g.xlarge|subnet-a"}, "", "", 4,
			"c7gn.xlarge in us-east-1b: InsufficientInstanceCapacity; c7g.xlarge in us-east-1b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeEC2{noCapacity: map[string]bool{}}
			for _, k := range tc.full {
				fake.noCapacity[k] = true
			}
			l, err := NewFleet(fake, "dev").Launch(context.Background(), task, p)
			if len(fake.runs) != tc.tries {
				t.Fatalf("%d RunInstances calls, want %d", len(fake.runs), tc.tries)
			}
			if tc.err != "" {
				if _, ok := err.(*events.InsufficientCapacity); !ok || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %T %v, want InsufficientCapacity containing %q", err, err, tc.err)
				}
				return
			}
			if err != nil || l.InstanceType != tc.wantType || l.AZ != tc.wantAZ {
				t.Fatalf("launched %+v, %v; want %s in %s", l, err, tc.wantType, tc.wantAZ)
			}
			if len(l.Skipped) != tc.tries-1 {
				t.Fatalf("skipped %v, want %d entries", l.Skipped, tc.tries-1)
			}
		})
	}
}

func TestClientTokensAreStablePerNodeAndCandidate(t *testing.T) {
	c := candidate{Type: "c7g.large", Placement: pool.Placement{Subnet: "subnet-a"}}
	if clientToken("n-1", c) != clientToken("n-1", c) {
		t.Fatal("the same node and candidate got two tokens")
	}
	if clientToken("n-1", c) == clientToken("n-2", c) {
		t.Fatal("two nodes share a token")
	}
	if len(clientToken("n-1", c)) > 64 {
		t.Fatal("token longer than EC2 allows")
	}
}

// motoNetwork creates a VPC, a subnet and a launch template on moto and
// returns a pool that uses them.
func motoNetwork(t *testing.T, c *ec2.Client) pool.Pool {
	t.Helper()
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.40.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := motoserver.Subnet(ctx, c, aws.ToString(vpc.Vpc.VpcId), "10.40.0.0/20", "us-east-1a")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("media"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-12c6146b")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return pool.Pool{
		Name:           "live",
		LaunchTemplate: pool.LaunchTemplate{ID: aws.ToString(lt.LaunchTemplate.LaunchTemplateId), Version: "1"},
		InstanceTypes:  []string{"c7g.large"},
		Placement:      []pool.Placement{{AZ: "us-east-1a", Subnet: sub}},
	}
}

func TestLaunchOnMoto(t *testing.T) {
	srv := motoserver.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(srv.Config(ctx))
	p := motoNetwork(t, c)
	f := NewFleet(c, "dev")
	task := events.NodeTask{Pool: "live", Node: "n-1", AZ: "us-east-1a", Subnet: p.Placement[0].Subnet, InstanceTypes: p.InstanceTypes}

	l, err := f.Launch(ctx, task, p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{l.InstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	tags := map[string]string{}
	for _, tg := range inst.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags[TagPool] != "live" || tags[TagEnv] != "dev" || tags[TagNode] != "n-1" {
		t.Fatalf("instance tags = %v", tags)
	}
	if string(inst.InstanceType) != "c7g.large" || aws.ToString(inst.SubnetId) != p.Placement[0].Subnet {
		t.Fatalf("instance %s in %s", inst.InstanceType, aws.ToString(inst.SubnetId))
	}
	if inst.MetadataOptions == nil || inst.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
		t.Fatalf("IMDSv2 not required: %+v", inst.MetadataOptions)
	}

	again, err := f.Launch(ctx, task, p)
	if err != nil || again.InstanceID != l.InstanceID || !again.Adopted {
		t.Fatalf("a repeated launch gave %+v, %v; want the same instance adopted", again, err)
	}
	all, _ := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	count := 0
	for _, r := range all.Reservations {
		count += len(r.Instances)
	}
	if count != 1 {
		t.Fatalf("%d instances exist after two launches of one node", count)
	}

	d, err := f.Describe(ctx, l.InstanceID)
	if err != nil || d.State != "running" || d.PrivateIP == "" {
		t.Fatalf("describe = %+v, %v", d, err)
	}
	if err := f.Terminate(ctx, l.InstanceID); err != nil {
		t.Fatal(err)
	}
	if err := f.Terminate(ctx, l.InstanceID); err != nil {
		t.Fatalf("terminating twice: %v", err)
	}
	if _, found, _ := f.FindByNode(ctx, "n-1"); found {
		t.Fatal("a terminated instance is still found for the node")
	}
	if d, _ := f.Describe(ctx, "i-0000000000000dead"); d.State != "gone" {
		t.Fatalf("a missing instance is %q, want gone", d.State)
	}
}

// TestTheWarmPoolLifecycleOnMoto drives a node for the warm pool through
// the provision handler against moto: launched, parked (stopped, WARM),
// claimed by a scale-out, started again and sent straight to its probe.
func TestTheWarmPoolLifecycleOnMoto(t *testing.T) {
	srv := motoserver.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(srv.Config(ctx))
	p := motoNetwork(t, c)
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-w", Execution: "fill", State: fleet.Pending, Goal: events.GoalWarm, AZ: "us-east-1a", Subnet: p.Placement[0].Subnet})
	h := NewHandler(NewFleet(c, "dev"), store, pool.File{Environment: "dev", Pools: []pool.Pool{p}}, time.Now, telemetry.NewLogger(io.Discard, "provision"))
	act := func(action string, task events.NodeTask) Result {
		t.Helper()
		raw, _ := json.Marshal(Request{Action: action, Task: task})
		res, err := h.Handle()(ctx, raw)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		return res
	}
	instanceState := func(id string) types.InstanceStateName {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Reservations[0].Instances[0].State.Name
	}
	fill := events.NodeTask{Pool: "live", Node: "n-w", Execution: "fill", AZ: "us-east-1a", Subnet: p.Placement[0].Subnet, InstanceTypes: p.InstanceTypes, Goal: events.GoalWarm}
	act(ActionLaunch, fill)
	if res := act(ActionCheck, fill); !res.Ready || res.Deployed {
		t.Fatalf("check of a new node = %+v; want ready, to be deployed", res)
	}
	// Deploy and probe happen elsewhere; the node is probed and healthy.
	n := store.Node("live", "n-w")
	if _, err := store.Transition(ctx, "live", "n-w", fleet.Deploying, n.Version, fleet.Probing, fleet.Change{Command: "cmd-1"}); err != nil {
		t.Fatal(err)
	}
	parked := false
	for i := 0; i < 5 && !parked; i++ {
		parked = act(ActionPark, fill).Ready
	}
	n = store.Node("live", "n-w")
	if !parked || n.State != fleet.Warm || instanceState(n.InstanceID) != types.InstanceStateNameStopped {
		t.Fatalf("after parking: node %s, instance %s; want WARM and stopped", n.State, instanceState(n.InstanceID))
	}
	if res := act(ActionPark, fill); !res.Ready {
		t.Fatal("a retried park of a WARM node is not ready")
	}

	// A scale-out claims it (as the plan does) and starts it.
	n, err := store.Transition(ctx, "live", "n-w", fleet.Warm, n.Version, fleet.Pending, fleet.Change{Execution: "out", Goal: events.GoalServe})
	if err != nil {
		t.Fatal(err)
	}
	serve := events.NodeTask{Pool: "live", Node: "n-w", Execution: "out", AZ: "us-east-1a", Subnet: p.Placement[0].Subnet,
		InstanceTypes: p.InstanceTypes, Warm: true, InstanceID: n.InstanceID, Goal: events.GoalServe}
	if res := act(ActionLaunch, serve); res.InstanceID != n.InstanceID {
		t.Fatalf("the warm start gave instance %s, want %s", res.InstanceID, n.InstanceID)
	}
	if st := instanceState(n.InstanceID); st != types.InstanceStateNameRunning && st != types.InstanceStateNamePending {
		t.Fatalf("warm instance is %s after its start", st)
	}
	ready := Result{}
	for i := 0; i < 5 && !ready.Ready; i++ {
		ready = act(ActionCheck, serve)
	}
	if !ready.Ready || !ready.Deployed || store.Node("live", "n-w").State != fleet.Probing {
		t.Fatalf("check of the started warm node = %+v, node %s; want deployed and PROBING", ready, store.Node("live", "n-w").State)
	}
	if res := act(ActionCheck, serve); !res.Deployed {
		t.Fatal("a retried check of a started warm node lost its deployment")
	}
}
