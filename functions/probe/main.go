// Command probe checks a new node's health endpoint and media port.
package main

import (
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/health"
)

func main() {
	env := coldstart.MustLoad("probe")
	store := env.Store()
	// No keep-alive: every probe measures a fresh connection, as a new
	// client would see it.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	lambda.Start(health.NewHandler(health.Prober{HTTP: client}, store, env.Pools, time.Now, env.Log).Handle())
}
