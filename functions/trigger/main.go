// Command trigger receives CloudWatch alarm state changes from EventBridge,
// decides whether a pool scales, and starts the scaling execution.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/trigger"
)

func main() {
	env, err := coldstart.Load(context.Background(), "trigger")
	if err != nil {
		slog.Error("cold start failed", "function", "trigger", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	machines := map[pool.Direction]string{pool.ScaleOut: os.Getenv("MEDIASCALE_SCALE_OUT_MACHINE")}
	lambda.Start(trigger.NewHandler(env.Pools, store, sfn.NewFromConfig(env.AWS), machines, time.Now, env.Log).Handle)
}
