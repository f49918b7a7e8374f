// Command drain takes a node out of service without cutting its sessions.
package main

import (
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/drain"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/traffic"
)

func main() {
	env := coldstart.MustLoad("drain")
	store := env.Store()
	weights := traffic.ByMode(traffic.NewRecords(route53.NewFromConfig(env.AWS)), traffic.NewTargets(elasticloadbalancingv2.NewFromConfig(env.AWS), store))
	sessions := health.Sessioner{HTTP: &http.Client{Timeout: 5 * time.Second}}
	instances := compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment)
	lambda.Start(drain.NewHandler(weights, ssm.NewFromConfig(env.AWS), sessions, instances, store, env.Pools, env.Table, time.Now, env.Log).Handle())
}
