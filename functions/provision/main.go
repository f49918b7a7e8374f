// Command provision launches a node's EC2 instance (or starts a warm one)
// and reports when it runs.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
)

func main() {
	env := coldstart.MustLoad("provision")
	store := env.Store()
	instances := compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment)
	lambda.Start(compute.NewHandler(instances, store, env.Pools, time.Now, env.Log).Handle())
}
