// Command provision launches a node's EC2 instance (or starts a warm one)
// and reports when it runs.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
)

func main() {
	env, err := coldstart.Load(context.Background(), "provision")
	if err != nil {
		slog.Error("cold start failed", "function", "provision", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	instances := compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment)
	lambda.Start(compute.NewHandler(instances, store, env.Pools, time.Now, env.Log).Handle())
}
