// Command forecast runs every hour and forecasts each pool's load from its
// own history, so the controller can raise the pool's floor one lead time
// ahead of a recurring peak.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/forecast"
)

func main() {
	env := coldstart.MustLoad("forecast")
	h := forecast.NewHandler(cloudwatch.NewFromConfig(env.AWS), env.Store(), env.Pools, time.Now, env.Log)
	lambda.Start(h.Handle())
}
