// Command shift moves a share of traffic onto a new node, step by step,
// checking the guard after each bake.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/traffic"
)

func main() {
	env := coldstart.MustLoad("shift")
	store := env.Store()
	weights := traffic.ByMode(traffic.NewRecords(route53.NewFromConfig(env.AWS)), traffic.NewTargets(elasticloadbalancingv2.NewFromConfig(env.AWS), store))
	guard := traffic.NewGuard(cloudwatch.NewFromConfig(env.AWS), time.Now)
	lambda.Start(traffic.NewHandler(weights, guard, store, env.Pools, time.Now, env.Log).Handle())
}
