// Command release ends a scaling execution: lock freed, cooldown started,
// outcome summarised.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/release"
)

func main() {
	env, err := coldstart.Load(context.Background(), "release")
	if err != nil {
		slog.Error("cold start failed", "function", "release", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	lambda.Start(release.NewHandler(store, time.Now, env.Log).Handle())
}
