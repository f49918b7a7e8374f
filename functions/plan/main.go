// Command plan decides which nodes a scale-out adds (and records them) or
// which nodes a scale-in drains; it also retires stale warm-pool nodes.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/traffic"
)

func main() {
	env := coldstart.MustLoad("plan")
	store := env.Store()
	conns := traffic.NewGuard(cloudwatch.NewFromConfig(env.AWS), time.Now)
	instances := compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment)
	lambda.Start(capacity.NewHandler(store, conns, instances, env.Pools, fleet.NewNodeID, time.Now, env.Log).Handle())
}
