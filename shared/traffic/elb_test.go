package traffic

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

func TestGroupWeights(t *testing.T) {
	cases := []struct {
		name                   string
		stable, canaryShare    int
		wantStable, wantCanary int
	}{
		{"one new node at 10% beside four serving nodes gets a tenth of one node's share", 4, 10, 975, 24},
		{"one new node at 50% beside one serving node gets a third of the traffic", 1, 50, 666, 333},
		{"three new nodes at 30% beside three serving nodes", 3, 90, 768, 231},
		{"two new nodes at 10% and 80% beside two serving nodes carry 90% of one node together", 2, 90, 689, 310},
		{"an empty pool sends everything to the new nodes", 0, 20, 0, 999},
		{"no node being shifted sends everything to the stable group", 5, 0, 999, 0},
		{"a tiny share never rounds the canary group to zero", 900, 1, 998, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := GroupWeights(tc.stable, tc.canaryShare)
			if s != tc.wantStable || c != tc.wantCanary {
				t.Fatalf("GroupWeights(%d, %d) = %d/%d, want %d/%d", tc.stable, tc.canaryShare, s, c, tc.wantStable, tc.wantCanary)
			}
		})
	}
}

// records is the node table as the shift handler leaves it: each node's
// weight, written after its traffic moved.
type records map[string]fleet.Node

func (r records) ListNodes(_ context.Context, p string) ([]fleet.Node, error) {
	var out []fleet.Node
	for _, n := range r {
		if n.Pool == p {
			out = append(out, n)
		}
	}
	return out, nil
}

// set moves a node to weight the way the shift handler does: traffic
// first, then the record.
func (r records) set(t *testing.T, tg *Targets, p pool.Pool, id, ip string, weight int) {
	t.Helper()
	if err := tg.SetWeight(context.Background(), p, id, ip, weight); err != nil {
		t.Fatalf("%s to %d: %v", id, weight, err)
	}
	st := fleet.Shifting
	if weight >= FullWeight {
		st = fleet.Active
	}
	r[id] = fleet.Node{Pool: p.Name, ID: id, Endpoint: ip, State: st, Weight: weight}
}

// motoNLB creates an NLB with a listener forwarding to a stable and a
// canary IP target group on moto, and returns a pool using them.
func motoNLB(t *testing.T) (*elb.Client, pool.Pool) {
	t.Helper()
	srv := motoserver.Start(t)
	ctx := context.Background()
	cfg := srv.Config(ctx)
	e := ec2.NewFromConfig(cfg)
	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.40.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := motoserver.Subnet(ctx, e, aws.ToString(vpc.Vpc.VpcId), "10.40.0.0/20", "us-east-1a")
	if err != nil {
		t.Fatal(err)
	}
	c := elb.NewFromConfig(cfg)
	lb, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("voice"), Type: elbtypes.LoadBalancerTypeEnumNetwork, Subnets: []string{sub}})
	if err != nil {
		t.Fatal(err)
	}
	group := func(name string) string {
		tg, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(1935),
			VpcId: vpc.Vpc.VpcId, TargetType: elbtypes.TargetTypeEnumIp})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	}
	stable, canary := group("voice-stable"), group("voice-canary")
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(1935),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(stable)}}})
	if err != nil {
		t.Fatal(err)
	}
	return c, pool.Pool{Name: "voice", Traffic: pool.Traffic{Mode: pool.TrafficNLB, LoadBalancer: &pool.LoadBalancer{
		ListenerArn: aws.ToString(l.Listeners[0].ListenerArn), TargetGroupArn: stable, CanaryTargetGroupArn: canary, Port: 1935,
	}}}
}

func listenerSplit(t *testing.T, c *elb.Client, p pool.Pool) (stable, canary int32) {
	t.Helper()
	out, err := c.DescribeListeners(context.Background(), &elb.DescribeListenersInput{ListenerArns: []string{p.Traffic.LoadBalancer.ListenerArn}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range out.Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups {
		switch aws.ToString(g.TargetGroupArn) {
		case p.Traffic.LoadBalancer.TargetGroupArn:
			stable = aws.ToInt32(g.Weight)
		case p.Traffic.LoadBalancer.CanaryTargetGroupArn:
			canary = aws.ToInt32(g.Weight)
		}
	}
	return stable, canary
}

func TestTargetsShiftANodeThroughTheCanaryGroupOnMoto(t *testing.T) {
	c, p := motoNLB(t)
	ctx := context.Background()
	rec := records{}
	tg := NewTargets(c, rec)
	rec.set(t, tg, p, "old", "127.0.0.10", FullWeight)
	want := map[int][2]int32{10: {908, 91}, 30: {768, 231}, 50: {666, 333}, 80: {555, 444}, 100: {999, 0}}
	for _, w := range []int{10, 30, 50, 80, 100} {
		rec.set(t, tg, p, "new", "127.0.0.11", w)
		s, cw := listenerSplit(t, c, p)
		if s != want[w][0] || cw != want[w][1] {
			t.Fatalf("at %d%% the listener splits %d/%d, want %d/%d", w, s, cw, want[w][0], want[w][1])
		}
	}
	members := func(arn string) int {
		out, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.TargetHealthDescriptions)
	}
	if members(p.Traffic.LoadBalancer.TargetGroupArn) != 2 || members(p.Traffic.LoadBalancer.CanaryTargetGroupArn) != 0 {
		t.Fatal("at full weight the node should sit in the stable group only")
	}
	if err := tg.Remove(ctx, p, "new", "127.0.0.11"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Remove(ctx, p, "new", "127.0.0.11"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if members(p.Traffic.LoadBalancer.TargetGroupArn) != 1 {
		t.Fatal("the removed node is still registered")
	}
}

func TestCanaryNodesKeepTheirOwnStepsWhenOneRollsBackOnMoto(t *testing.T) {
	c, p := motoNLB(t)
	ctx := context.Background()
	rec := records{}
	tg := NewTargets(c, rec)
	rec.set(t, tg, p, "s1", "127.0.0.10", FullWeight)
	rec.set(t, tg, p, "s2", "127.0.0.11", FullWeight)
	// Two executions' nodes at different steps: a at 10 %, b at 80 %.
	rec.set(t, tg, p, "a", "127.0.0.20", 10)
	rec.set(t, tg, p, "b", "127.0.0.21", 80)
	if s, cw := listenerSplit(t, c, p); s != 689 || cw != 310 {
		t.Fatalf("a at 10%% and b at 80%% beside two serving nodes: %d/%d, want 689/310 (0.9 of a node's share)", s, cw)
	}
	// b fails its guard and is rolled back: a keeps its 10 %, it is not
	// handed b's share or a full one.
	if err := tg.Remove(ctx, p, "b", "127.0.0.21"); err != nil {
		t.Fatal(err)
	}
	delete(rec, "b")
	if s, cw := listenerSplit(t, c, p); s != 951 || cw != 48 {
		t.Fatalf("after b's rollback the listener splits %d/%d, want 951/48 (a's 10%% beside two full shares)", s, cw)
	}
	// A canary target no record claims draws no share.
	if _, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(p.Traffic.LoadBalancer.CanaryTargetGroupArn),
		Targets: target("127.0.0.99", 1935)}); err != nil {
		t.Fatal(err)
	}
	rec.set(t, tg, p, "a", "127.0.0.20", 30)
	if s, cw := listenerSplit(t, c, p); s != 869 || cw != 130 {
		t.Fatalf("a at 30%% beside an unclaimed target: %d/%d, want 869/130", s, cw)
	}
}

// moto registers IP targets as healthy and never runs a health check, so
// this test shows the read and the grouping; an unhealthy target is the
// healing package's table test.
func TestTargetHealthIsReadFromBothGroupsOnMoto(t *testing.T) {
	c, p := motoNLB(t)
	rec := records{}
	tg := NewTargets(c, rec)
	rec.set(t, tg, p, "old", "127.0.0.10", FullWeight)
	rec.set(t, tg, p, "new", "127.0.0.11", 30)
	got, err := tg.Health(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	lb := p.Traffic.LoadBalancer
	if old, fresh := got["127.0.0.10"], got["127.0.0.11"]; len(got) != 2 || old.Group != lb.TargetGroupArn || fresh.Group != lb.CanaryTargetGroupArn ||
		old.State != "healthy" || fresh.State != "healthy" || old.Unhealthy() {
		t.Fatalf("target health %+v: want the stable node in %s and the new one in %s, both healthy", got, lb.TargetGroupArn, lb.CanaryTargetGroupArn)
	}
	missing := p
	missing.Traffic.LoadBalancer = &pool.LoadBalancer{TargetGroupArn: lb.TargetGroupArn, CanaryTargetGroupArn: lb.CanaryTargetGroupArn + "-gone"}
	if _, err := tg.Health(context.Background(), missing); err == nil || !strings.Contains(err.Error(), "-gone") {
		t.Fatalf("a missing target group: %v", err)
	}
}
