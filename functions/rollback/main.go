// Command rollback takes a failed node out: traffic off, instance
// terminated, record FAILED with the reason.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/rollback"
	"github.com/mediascale/mediascale/shared/traffic"
)

func main() {
	env := coldstart.MustLoad("rollback")
	store := env.Store()
	weights := traffic.ByMode(traffic.NewRecords(route53.NewFromConfig(env.AWS)), traffic.NewTargets(elasticloadbalancingv2.NewFromConfig(env.AWS), store))
	instances := compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment)
	lambda.Start(rollback.NewHandler(weights, instances, store, env.Pools, time.Now, env.Log).Handle())
}
