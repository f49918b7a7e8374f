// Command deploy installs the media server on a node with SSM Run Command
// and reports the command's outcome.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/deploy"
)

func main() {
	env := coldstart.MustLoad("deploy")
	store := env.Store()
	lambda.Start(deploy.NewHandler(ssm.NewFromConfig(env.AWS), store, env.Pools, env.Table, time.Now, env.Log).Handle())
}
