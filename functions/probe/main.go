// Command probe checks a new node's health endpoint and media port.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
)

func main() {
	env, err := coldstart.Load(context.Background(), "probe")
	if err != nil {
		slog.Error("cold start failed", "function", "probe", "error", err.Error())
		os.Exit(1)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(env.AWS), env.Table, time.Now)
	// No keep-alive: every probe measures a fresh connection, as a new
	// client would see it.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	lambda.Start(health.NewHandler(health.Prober{HTTP: client}, store, env.Pools, time.Now, env.Log).Handle())
}
