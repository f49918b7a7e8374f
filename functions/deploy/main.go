// Command deploy installs the media server on a node with SSM Run Command
// and reports the command's outcome.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/deploy"
	"github.com/mediascale/mediascale/shared/fleet"
)

func main() {
	env, err := coldstart.Load(context.Background(), "deploy")
	if err != nil {
		slog.Error("cold start failed", "function", "deploy", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	lambda.Start(deploy.NewHandler(ssm.NewFromConfig(env.AWS), store, env.Pools, time.Now, env.Log).Handle())
}
