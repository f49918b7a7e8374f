package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/reconcile"
)

func TestReconcilerRepairsHandMadeDriftOnTheLocalCloud(t *testing.T) {
	t.Parallel()
	// Every drift below is old enough to act on at once.
	c := newCloud(t, "MEDIASCALE_ORPHAN_GRACE_SECONDS=0", "MEDIASCALE_STUCK_AFTER_SECONDS=0")
	ctx := context.Background()
	c.fresh()
	if rs := c.replay(c.alarm()); rs.Status != "SUCCEEDED" {
		t.Fatalf("scale-out: %s", rs.Status)
	}
	active := c.activeNodes()
	e := ec2.NewFromConfig(c.cfg)

	// 1. An orphan: an instance tagged for the pool that no record knows.
	p, _ := c.pools.Find("live-rtmp-use1")
	run, err := e.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(p.Placement[0].Subnet),
		LaunchTemplate: &ec2types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(p.LaunchTemplate.ID), Version: aws.String(p.LaunchTemplate.Version)},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String(compute.TagPool), Value: aws.String("live-rtmp-use1")}, {Key: aws.String(compute.TagEnv), Value: aws.String("dev")},
			{Key: aws.String(compute.TagNode), Value: aws.String("n-ghost")},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	orphan := aws.ToString(run.Instances[0].InstanceId)
	// 2. A vanished instance: an active node's instance terminated by hand.
	vanished := active[0]
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{vanished.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	// 3. A stale lock: held by an execution that does not run.
	if _, err := c.store.AcquireLock(ctx, "live-rtmp-use1", "live-rtmp-use1-out-20261121T000000000Z-deadbeef", time.Hour); err != nil {
		t.Fatal(err)
	}
	// 4. A stuck node: PROVISIONING for an execution that ended.
	stuck, err := c.store.CreateNode(ctx, fleet.Node{Pool: "live-rtmp-use1", ID: "n-stuck", Execution: "live-rtmp-use1-out-20261121T000000000Z-deadbeef"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.Transition(ctx, "live-rtmp-use1", stuck.ID, fleet.Pending, stuck.Version, fleet.Provisioning, fleet.Change{}); err != nil {
		t.Fatal(err)
	}

	out, err := lambda.NewFromConfig(c.cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mediascale-dev-reconcile"), Payload: []byte(`{}`)})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("reconcile: %v %s", err, out.Payload)
	}
	var report reconcile.Report
	if err := json.Unmarshal(out.Payload, &report); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range report.Findings["live-rtmp-use1"] {
		kinds[f.Kind]++
	}
	if kinds[reconcile.Orphan] != 1 || kinds[reconcile.Vanished] != 1 || kinds[reconcile.StaleLock] != 1 || kinds[reconcile.StuckNode] != 1 || len(report.Errors) != 0 {
		t.Fatalf("findings %v, errors %v; want one of each kind\n%s", kinds, report.Errors, out.Payload)
	}
	if st, _ := c.instance(orphan); st != "terminated" {
		t.Fatalf("the orphan is %s", st)
	}
	if n, _ := c.store.GetNode(ctx, vanished.Pool, vanished.ID); n.State != fleet.Failed || c.recordWeight(n.ID) != -1 {
		t.Fatalf("the node whose instance vanished is %s with record weight %d", n.State, c.recordWeight(n.ID))
	}
	if c.lockHeld() {
		t.Fatal("the stale lock is still held")
	}
	if n, _ := c.store.GetNode(ctx, "live-rtmp-use1", "n-stuck"); n.State != fleet.Failed {
		t.Fatalf("the stuck node is %s", n.State)
	}
	if n, _ := c.store.GetNode(ctx, active[1].Pool, active[1].ID); n.State != fleet.Active {
		t.Fatalf("a healthy node was touched: %s", n.State)
	}

	again, err := lambda.NewFromConfig(c.cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mediascale-dev-reconcile"), Payload: []byte(`{}`)})
	if err != nil || again.FunctionError != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	var second reconcile.Report
	_ = json.Unmarshal(again.Payload, &second)
	if len(second.Findings["live-rtmp-use1"]) != 0 {
		t.Fatalf("a second run still finds drift: %s", again.Payload)
	}
}
