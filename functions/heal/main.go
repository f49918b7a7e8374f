// Command heal checks every serving node each minute (its agent's
// heartbeat, an active probe and, for load-balancer pools, the target
// group's health) and takes a node that keeps failing out
// of service: its traffic at once, its replacement owed to the pool, its
// instance terminated once its sessions have drained. It then moves
// Route53 pools' record weights toward each node's headroom.
package main

import (
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/healing"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/traffic"
)

func main() {
	env := coldstart.MustLoad("heal")
	store := env.Store()
	records := traffic.NewRecords(route53.NewFromConfig(env.AWS))
	targets := traffic.NewTargets(elasticloadbalancingv2.NewFromConfig(env.AWS), store)
	weights := traffic.ByMode(records, targets)
	client := &http.Client{Timeout: 5 * time.Second}
	h := healing.NewHandler(env.Pools, store, health.Prober{HTTP: client}, health.Sessioner{HTTP: client},
		compute.NewFleet(ec2.NewFromConfig(env.AWS), env.Pools.Environment), weights, records, targets, time.Now, env.Log)
	lambda.Start(h.Handle())
}
