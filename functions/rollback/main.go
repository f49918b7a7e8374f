// Command rollback takes a failed node out: traffic off, instance
// terminated, record FAILED with the reason.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/rollback"
	"github.com/mediascale/mediascale/shared/traffic"
)

func main() {
	env, err := coldstart.Load(context.Background(), "rollback")
	if err != nil {
		slog.Error("cold start failed", "function", "rollback", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	weights := traffic.ByMode(traffic.NewRecords(route53.NewFromConfig(env.AWS)))
	instances := compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment)
	lambda.Start(rollback.NewHandler(weights, instances, store, env.Pools, time.Now, env.Log).Handle())
}
