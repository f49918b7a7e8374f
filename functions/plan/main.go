// Command plan decides which nodes a scale-out adds and records them.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
)

func main() {
	env := coldstart.MustLoad("plan")
	store := env.Store()
	lambda.Start(capacity.NewHandler(store, env.Pools, fleet.NewNodeID, time.Now, env.Log).Handle())
}
