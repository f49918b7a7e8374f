// Command trigger runs the controller: on CloudWatch alarm state changes
// from EventBridge, on the per-minute schedule and on operator requests it
// decides each pool's capacity and starts the scaling execution.
package main

import (
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/trigger"
)

func main() {
	env := coldstart.MustLoad("trigger")
	store := env.Store()
	machines := map[pool.Direction]string{
		pool.ScaleOut: os.Getenv("MEDIASCALE_SCALE_OUT_MACHINE"),
		pool.ScaleIn:  os.Getenv("MEDIASCALE_SCALE_IN_MACHINE"),
	}
	h := trigger.NewHandler(env.Pools, env.MustOrigin(), store, sfn.NewFromConfig(env.AWS), cloudwatch.NewFromConfig(env.AWS), machines, time.Now, env.Log).
		WithPressureLoop(os.Getenv("MEDIASCALE_PRESSURE_MACHINE"))
	lambda.Start(h.Handle)
}
