// Command plan decides which nodes a scale-out adds and records them.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
)

func main() {
	env, err := coldstart.Load(context.Background(), "plan")
	if err != nil {
		slog.Error("cold start failed", "function", "plan", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	lambda.Start(capacity.NewHandler(store, env.Pools, fleet.NewNodeID, time.Now, env.Log).Handle())
}
