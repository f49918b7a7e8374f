// Command reconcile runs on a schedule and repairs drift between the node
// table and the instances that really run.
package main

import (
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/reconcile"
	"github.com/mediascale/mediascale/shared/traffic"
)

// seconds reads a duration in seconds from the environment.
func seconds(name string, def time.Duration) time.Duration {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return time.Duration(v) * time.Second
	}
	return def
}

func main() {
	env := coldstart.MustLoad("reconcile")
	store := env.Store()
	weights := traffic.ByMode(traffic.NewRecords(route53.NewFromConfig(env.AWS)), traffic.NewTargets(elasticloadbalancingv2.NewFromConfig(env.AWS), store))
	machines := []string{os.Getenv("MEDIASCALE_SCALE_OUT_MACHINE"), os.Getenv("MEDIASCALE_SCALE_IN_MACHINE")}
	h := reconcile.NewHandler(store, compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment), weights,
		sfn.NewFromConfig(env.AWS), cloudwatch.NewFromConfig(env.AWS), machines, env.Pools,
		seconds("MEDIASCALE_ORPHAN_GRACE_SECONDS", 15*time.Minute), seconds("MEDIASCALE_STUCK_AFTER_SECONDS", 30*time.Minute),
		time.Now, env.Log)
	lambda.Start(h.Handle())
}
