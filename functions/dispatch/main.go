// Command dispatch is the entry dispatcher: behind an IAM-authenticated
// function URL it answers which node a new session goes to, reading each
// pool's nodes at most once a second, and refuses a session by class when
// every node is past that class's ceiling.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/dispatch"
)

func main() {
	env := coldstart.MustLoad("dispatch")
	lambda.Start(dispatch.NewHandler(env.Pools, env.Store(), dispatch.NewRegions(env.AWS, time.Now), time.Now, env.Log).Handle)
}
