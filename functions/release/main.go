// Command release ends a scaling execution: lock freed, cooldown started,
// outcome summarised.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/release"
)

func main() {
	env := coldstart.MustLoad("release")
	store := env.Store()
	lambda.Start(release.NewHandler(store, time.Now, env.Log).Handle())
}
