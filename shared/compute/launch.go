// Package compute launches, starts, inspects and terminates the EC2
// instances behind media nodes.
package compute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/pool"
)

// Tags every mediascale instance carries; the reconciler finds instances by
// them and IAM policies are scoped by them.
const (
	TagPool = "mediascale:pool"
	TagEnv  = "mediascale:env"
	TagNode = "mediascale:node"
)

// EC2 is the part of the EC2 client compute uses.
type EC2 interface {
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, opts ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	StartInstances(ctx context.Context, in *ec2.StartInstancesInput, opts ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	StopInstances(ctx context.Context, in *ec2.StopInstancesInput, opts ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// Fleet launches and inspects a pool's instances.
type Fleet struct {
	ec2 EC2
	env string
}

// NewFleet returns a Fleet for one environment.
func NewFleet(c EC2, env string) *Fleet { return &Fleet{ec2: c, env: env} }

// Launched is where a node's instance ended up and what was tried first.
type Launched struct {
	InstanceID   string   `json:"instanceId"`
	InstanceType string   `json:"instanceType"`
	AZ           string   `json:"az"`
	Subnet       string   `json:"subnet"`
	Adopted      bool     `json:"adopted,omitempty"`
	Skipped      []string `json:"skipped,omitempty"`
}

// candidate is one instance type in one zone.
type candidate struct {
	Type string
	pool.Placement
}

// Candidates orders the places a node may launch: every instance type in
// preference order in the planned zone first, then the same in each other
// zone, so capacity trouble moves to a less preferred type before it moves
// the node away from its zone.
func Candidates(task events.NodeTask, p pool.Pool) []candidate {
	zones := []pool.Placement{{AZ: task.AZ, Subnet: task.Subnet}}
	for _, pl := range p.Placement {
		if pl.Subnet != task.Subnet {
			zones = append(zones, pl)
		}
	}
	types := task.InstanceTypes
	if len(types) == 0 {
		types = p.InstanceTypes
	}
	var out []candidate
	for _, z := range zones {
		for _, t := range types {
			out = append(out, candidate{Type: t, Placement: z})
		}
	}
	return out
}

// clientToken makes RunInstances idempotent per node and candidate: a
// retried step asks for the same instance again and EC2 returns it rather
// than launching a second one. Tokens are at most 64 characters.
func clientToken(node string, c candidate) string {
	sum := sha256.Sum256([]byte(node + "|" + c.Type + "|" + c.Subnet))
	return "ms-" + hex.EncodeToString(sum[:])[:40]
}

// capacityCodes are the EC2 errors after which another type or zone may
// still work.
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity": true,
	"InsufficientCapacity":         true,
	"Unsupported":                  true,
	"InsufficientHostCapacity":     true,
}

// Launch gives a node an instance. An instance already tagged for the node
// (from an earlier attempt that died before recording it) is adopted, so
// the node never gets two. Otherwise each candidate is tried in order; when
// all of them lack capacity the error is InsufficientCapacity listing what
// was tried.
func (f *Fleet) Launch(ctx context.Context, task events.NodeTask, p pool.Pool) (Launched, error) {
	if existing, ok, err := f.FindByNode(ctx, task.Node); err != nil {
		return Launched{}, err
	} else if ok {
		existing.Adopted = true
		return existing, nil
	}
	var skipped []string
	for _, c := range Candidates(task, p) {
		out, err := f.ec2.RunInstances(ctx, f.runInput(task, p, c))
		var api smithy.APIError
		if errors.As(err, &api) && capacityCodes[api.ErrorCode()] {
			skipped = append(skipped, fmt.Sprintf("%s in %s: %s", c.Type, c.AZ, api.ErrorCode()))
			continue
		}
		if err != nil {
			return Launched{}, fmt.Errorf("launching node %s as %s in %s: %w", task.Node, c.Type, c.AZ, err)
		}
		if len(out.Instances) != 1 {
			return Launched{}, fmt.Errorf("launching node %s: EC2 returned %d instances", task.Node, len(out.Instances))
		}
		return Launched{InstanceID: aws.ToString(out.Instances[0].InstanceId), InstanceType: c.Type, AZ: c.AZ, Subnet: c.Subnet, Skipped: skipped}, nil
	}
	return Launched{}, events.CapacityExhausted(nil, "node %s: no capacity for any instance type in any zone (tried %s)", task.Node, strings.Join(skipped, "; "))
}

func (f *Fleet) runInput(task events.NodeTask, p pool.Pool, c candidate) *ec2.RunInstancesInput {
	tags := []types.Tag{
		{Key: aws.String(TagPool), Value: aws.String(p.Name)},
		{Key: aws.String(TagEnv), Value: aws.String(f.env)},
		{Key: aws.String(TagNode), Value: aws.String(task.Node)},
		{Key: aws.String("Name"), Value: aws.String(fmt.Sprintf("mediascale-%s-%s-%s", f.env, p.Name, task.Node))},
	}
	return &ec2.RunInstancesInput{
		MinCount:       aws.Int32(1),
		MaxCount:       aws.Int32(1),
		ClientToken:    aws.String(clientToken(task.Node, c)),
		InstanceType:   types.InstanceType(c.Type),
		SubnetId:       aws.String(c.Subnet),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(p.LaunchTemplate.ID), Version: aws.String(p.LaunchTemplate.Version)},
		// IMDSv2 only, whatever the launch template says.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:              types.HttpTokensStateRequired,
			HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: aws.Int32(1),
		},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
	}
}

// StartWarm starts a stopped warm-pool instance.
func (f *Fleet) StartWarm(ctx context.Context, task events.NodeTask) (Launched, error) {
	if task.InstanceID == "" {
		return Launched{}, events.Invalid("warm node %s has no instance id", task.Node)
	}
	if _, err := f.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{task.InstanceID}}); err != nil {
		return Launched{}, fmt.Errorf("starting warm instance %s of node %s: %w", task.InstanceID, task.Node, err)
	}
	t := ""
	if len(task.InstanceTypes) > 0 {
		t = task.InstanceTypes[0]
	}
	return Launched{InstanceID: task.InstanceID, InstanceType: t, AZ: task.AZ, Subnet: task.Subnet}, nil
}

// Stop stops an instance that is parked in the warm pool.
func (f *Fleet) Stop(ctx context.Context, id string) error {
	if _, err := f.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	return nil
}

// FindByNode returns a live (pending or running) instance tagged for the
// node, if there is one.
func (f *Fleet) FindByNode(ctx context.Context, node string) (Launched, bool, error) {
	out, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagNode), Values: []string{node}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	if err != nil {
		return Launched{}, false, fmt.Errorf("looking for an instance of node %s: %w", node, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			l := Launched{InstanceID: aws.ToString(i.InstanceId), InstanceType: string(i.InstanceType), Subnet: aws.ToString(i.SubnetId)}
			if i.Placement != nil {
				l.AZ = aws.ToString(i.Placement.AvailabilityZone)
			}
			return l, true, nil
		}
	}
	return Launched{}, false, nil
}

// Instance is what the workflow needs to know about a running instance.
type Instance struct {
	ID        string
	State     string
	PrivateIP string
}

// Describe reads one instance; a missing one has State "gone".
func (f *Fleet) Describe(ctx context.Context, id string) (Instance, error) {
	out, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidInstanceID.NotFound" {
		return Instance{ID: id, State: "gone"}, nil
	}
	if err != nil {
		return Instance{}, fmt.Errorf("describing instance %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			inst := Instance{ID: id, PrivateIP: aws.ToString(i.PrivateIpAddress)}
			if i.State != nil {
				inst.State = string(i.State.Name)
			}
			return inst, nil
		}
	}
	return Instance{ID: id, State: "gone"}, nil
}

// Terminate ends an instance. An instance that is already gone is not an
// error: rollback must be safe to repeat.
func (f *Fleet) Terminate(ctx context.Context, id string) error {
	_, err := f.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidInstanceID.NotFound" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminating instance %s: %w", id, err)
	}
	return nil
}

// Tagged is an instance found by its mediascale tags.
type Tagged struct {
	ID       string
	Node     string
	State    string
	Launched time.Time
}

// Tagged lists the instances tagged for a pool of this environment, in
// every state, paging through DescribeInstances.
func (f *Fleet) Tagged(ctx context.Context, pool string) ([]Tagged, error) {
	var out []Tagged
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagPool), Values: []string{pool}},
		{Name: aws.String("tag:" + TagEnv), Values: []string{f.env}},
	}}
	for {
		page, err := f.ec2.DescribeInstances(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing instances of pool %s: %w", pool, err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				t := Tagged{ID: aws.ToString(i.InstanceId), Launched: aws.ToTime(i.LaunchTime)}
				if i.State != nil {
					t.State = string(i.State.Name)
				}
				for _, tag := range i.Tags {
					if aws.ToString(tag.Key) == TagNode {
						t.Node = aws.ToString(tag.Value)
					}
				}
				out = append(out, t)
			}
		}
		if page.NextToken == nil {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}
