package traffic

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// maxGroupWeight is the largest target-group weight ELBv2 accepts.
const maxGroupWeight = 999

// ELB is the part of the ELBv2 client traffic uses.
type ELB interface {
	RegisterTargets(ctx context.Context, in *elb.RegisterTargetsInput, opts ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, in *elb.DeregisterTargetsInput, opts ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
	DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, opts ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	ModifyListener(ctx context.Context, in *elb.ModifyListenerInput, opts ...func(*elb.Options)) (*elb.ModifyListenerOutput, error)
}

// Targets shifts traffic for load-balancer pools. ELBv2 weighs target
// groups, not targets, so a node being shifted in sits in the pool's
// canary group and the listener's forward action splits traffic between
// the stable and canary groups in proportion to what the nodes in each
// should carry: a full share per stable node, and per canary node the
// share of its own step, as its record says. Nodes of one execution, or
// of two, need not be at the same step: the canary group carries the sum
// of their shares (the load balancer spreads it evenly inside the group),
// so a node rolled back, or one still at 10 % beside one at 80 %, never
// hands the others a full share. At full weight a node moves to the
// stable group.
type Targets struct {
	elb   ELB
	nodes NodeLister
}

// NodeLister reads a pool's node records, for each canary node's weight.
type NodeLister interface {
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
}

// NewTargets returns a Targets.
func NewTargets(c ELB, nodes NodeLister) *Targets { return &Targets{elb: c, nodes: nodes} }

// GroupWeights splits the listener's traffic between the stable group
// (stable nodes at a full share each) and the canary group, whose nodes'
// shares add up to canaryShare (in FullWeight units: 100 is one node's
// full share). With no stable node the canary takes everything; with no
// canary share it takes nothing.
func GroupWeights(stable, canaryShare int) (stableWeight, canaryWeight int) {
	if canaryShare <= 0 {
		return maxGroupWeight, 0
	}
	if stable == 0 {
		return 0, maxGroupWeight
	}
	s := float64(stable * FullWeight)
	c := float64(canaryShare)
	stableWeight = int(s/(s+c)*maxGroupWeight + 0.5)
	canaryWeight = maxGroupWeight - stableWeight
	if canaryWeight == 0 {
		canaryWeight, stableWeight = 1, maxGroupWeight-1
	}
	return stableWeight, canaryWeight
}

func target(ip string, port int) []types.TargetDescription {
	return []types.TargetDescription{{Id: aws.String(ip), Port: aws.Int32(int32(port))}}
}

// SetWeight puts the node in the canary group below full weight, or in the
// stable group at full weight, and rebalances the listener.
func (t *Targets) SetWeight(ctx context.Context, p pool.Pool, node, ip string, weight int) error {
	lb := p.Traffic.LoadBalancer
	join, leave := lb.CanaryTargetGroupArn, lb.TargetGroupArn
	if weight >= FullWeight {
		join, leave = lb.TargetGroupArn, lb.CanaryTargetGroupArn
	}
	if _, err := t.elb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(join), Targets: target(ip, lb.Port)}); err != nil {
		return fmt.Errorf("registering node %s (%s) in %s: %w", node, ip, join, err)
	}
	if err := t.deregister(ctx, leave, ip, lb.Port); err != nil {
		return fmt.Errorf("moving node %s out of %s: %w", node, leave, err)
	}
	return t.balance(ctx, p, ip, weight)
}

// Remove takes the node out of both groups. A node in neither is not an
// error, so rollback and drain can repeat it.
func (t *Targets) Remove(ctx context.Context, p pool.Pool, node, ip string) error {
	lb := p.Traffic.LoadBalancer
	if ip == "" {
		return nil
	}
	for _, tg := range []string{lb.CanaryTargetGroupArn, lb.TargetGroupArn} {
		if err := t.deregister(ctx, tg, ip, lb.Port); err != nil {
			return fmt.Errorf("removing node %s from %s: %w", node, tg, err)
		}
	}
	return t.balance(ctx, p, ip, 0)
}

func (t *Targets) deregister(ctx context.Context, tg, ip string, port int) error {
	_, err := t.elb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: target(ip, port)})
	var notThere *types.InvalidTargetException
	if errors.As(err, &notThere) {
		return nil
	}
	return err
}

// balance sets the listener's split from the groups' current members:
// each stable member at a full share, each canary member at the weight
// its node's record holds, the node at ip at weight (its record is
// written after the change). A canary member no node record claims is
// left out of the share: no step of ours put it there.
func (t *Targets) balance(ctx context.Context, p pool.Pool, ip string, weight int) error {
	lb := p.Traffic.LoadBalancer
	stable, err := t.members(ctx, lb.TargetGroupArn)
	if err != nil {
		return err
	}
	canaries, err := t.members(ctx, lb.CanaryTargetGroupArn)
	if err != nil {
		return err
	}
	share := 0
	if len(canaries) > 0 {
		nodes, err := t.nodes.ListNodes(ctx, p.Name)
		if err != nil {
			return fmt.Errorf("reading the weights of pool %s's nodes: %w", p.Name, err)
		}
		recorded := map[string]int{}
		for _, n := range nodes {
			if n.Endpoint != "" && n.Serving() {
				recorded[n.Endpoint] = n.Weight
			}
		}
		for _, c := range canaries {
			if c == ip {
				share += weight
				continue
			}
			share += recorded[c]
		}
	}
	sw, cw := GroupWeights(len(stable), share)
	_, err = t.elb.ModifyListener(ctx, &elb.ModifyListenerInput{
		ListenerArn: aws.String(lb.ListenerArn),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{
			TargetGroups: []types.TargetGroupTuple{
				{TargetGroupArn: aws.String(lb.TargetGroupArn), Weight: aws.Int32(int32(sw))},
				{TargetGroupArn: aws.String(lb.CanaryTargetGroupArn), Weight: aws.Int32(int32(cw))},
			},
		}}},
	})
	if err != nil {
		return fmt.Errorf("splitting listener %s %d/%d: %w", lb.ListenerArn, sw, cw, err)
	}
	return nil
}

// targets reads a group's registered targets with their health.
func (t *Targets) targets(ctx context.Context, tg string) ([]types.TargetHealthDescription, error) {
	out, err := t.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return nil, fmt.Errorf("reading the targets of %s: %w", tg, err)
	}
	return out.TargetHealthDescriptions, nil
}

// members lists the addresses registered in a group, draining ones aside.
func (t *Targets) members(ctx context.Context, tg string) ([]string, error) {
	described, err := t.targets(ctx, tg)
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, d := range described {
		if d.TargetHealth == nil || d.TargetHealth.State != types.TargetHealthStateEnumDraining {
			if d.Target != nil {
				ips = append(ips, aws.ToString(d.Target.Id))
			}
		}
	}
	return ips, nil
}

// TargetState is one address's health as the pool's load balancer sees it.
type TargetState struct {
	// Group is the target group that says so.
	Group string
	// State is ELBv2's: initial, healthy, unhealthy, unused, draining,
	// unavailable.
	State string
	// Reason is the load balancer's reason code and description.
	Reason string
}

// Unhealthy reports whether the load balancer's own health checks fail
// the target. A target still in its first checks (initial), leaving
// (draining) or in a group the listener does not use (unused) is not
// judged.
func (s TargetState) Unhealthy() bool { return s.State == string(types.TargetHealthStateEnumUnhealthy) }

// Health reads how the pool's load balancer sees each registered address
// in its stable and canary groups, one call per group. An address
// unhealthy in either group is unhealthy.
func (t *Targets) Health(ctx context.Context, p pool.Pool) (map[string]TargetState, error) {
	lb := p.Traffic.LoadBalancer
	if lb == nil {
		return nil, fmt.Errorf("pool %s has no load balancer", p.Name)
	}
	out := map[string]TargetState{}
	for _, tg := range []string{lb.TargetGroupArn, lb.CanaryTargetGroupArn} {
		described, err := t.targets(ctx, tg)
		if err != nil {
			return nil, err
		}
		for _, d := range described {
			if d.Target == nil || d.TargetHealth == nil {
				continue
			}
			addr := aws.ToString(d.Target.Id)
			if out[addr].Unhealthy() {
				continue
			}
			out[addr] = TargetState{Group: tg, State: string(d.TargetHealth.State),
				Reason: strings.TrimSpace(string(d.TargetHealth.Reason) + " " + aws.ToString(d.TargetHealth.Description))}
		}
	}
	return out, nil
}
