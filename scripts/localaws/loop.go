package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/mediascale/mediascale/scripts/internal/alarmclock"
	"github.com/mediascale/mediascale/scripts/internal/localnodes"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/pool"
)

// loop runs what turns the local cloud into a closed loop: a media node
// with its agent for every instance, CloudWatch alarm evaluation and the
// scheduled rules (alarmclock). It stops, and stops every node, on a
// signal.
func loop(args []string) error {
	fs := flag.NewFlagSet("loop", flag.ExitOnError)
	env := fs.String("env", envOr("MEDIASCALE_ENV", "dev"), "environment")
	state := fs.String("state", ".localcloud", "the local cloud's state folder")
	agentBin := fs.String("agent", "build/tools/mediascale-agent", "the node agent built for this machine")
	speedup := fs.Int("schedule-speedup", 6, "run scheduled rules this many times as often as their rate")
	endpoints := fs.String("endpoints", "", "the endpoint file this loop's nodes are written to (default STATE/endpoints.json)")
	subnetPort := fs.Int("subnet-port", 0, "a port the cloud holds, from which the nodes' 127.a.b.0/24 is derived (default the router's)")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, err := localConfig(ctx)
	if err != nil {
		return err
	}
	router, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL"))
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(router.Port())
	if *subnetPort != 0 {
		port = *subnetPort
	}
	if *endpoints == "" {
		*endpoints = filepath.Join(*state, "endpoints.json")
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("component", "loop")

	fn := lambda.NewFromConfig(cfg)
	table, pools, err := deployed(ctx, cfg, *env)
	if err != nil {
		return err
	}
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	agent, err := filepath.Abs(*agentBin)
	if err != nil {
		return err
	}
	nodes := &localnodes.Manager{
		EC2: ec2.NewFromConfig(cfg), Pools: pools, Subnet: localnodes.SubnetFor(port),
		Dir: filepath.Join(*state, "nodes", *env), Endpoints: *endpoints, Agent: agent,
		AgentEnv: []string{
			"AWS_ENDPOINT_URL=" + router.String(), "AWS_REGION=" + cfg.Region, "AWS_ACCESS_KEY_ID=testing",
			"AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true", "MEDIASCALE_TABLE=" + table,
		},
		Log: log,
	}
	clock := &alarmclock.Clock{
		CW: cloudwatch.NewFromConfig(cfg), Events: eventbridge.NewFromConfig(cfg),
		Deliver: func(ctx context.Context, target string, event []byte) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			out, err := fn.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: event})
			if err != nil {
				return err
			}
			log.Info("delivered", "target", target, "answer", string(out.Payload))
			return nil
		},
		Account: aws.ToString(who.Account), Region: cfg.Region, Prefix: "mediascale-" + *env + "-",
		ScheduleSpeedup: *speedup, Log: log, Now: time.Now,
	}
	log.Info("loop running", "environment", *env, "region", cfg.Region, "subnet", fmt.Sprintf("127.%d.%d.0/24", nodes.Subnet[0], nodes.Subnet[1]), "scheduleSpeedup", *speedup, "pools", len(pools.Pools))
	done := make(chan struct{})
	go func() { nodes.Run(ctx); close(done) }()
	clock.Run(ctx)
	<-done
	return nil
}

// deployed reads what the deployed environment runs on: the node table's
// name and the published pool configuration, as the trigger sees them.
func deployed(ctx context.Context, cfg aws.Config, env string) (table string, pools pool.File, err error) {
	trigger, err := lambda.NewFromConfig(cfg).GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("mediascale-" + env + "-trigger")})
	if err != nil {
		return "", pool.File{}, fmt.Errorf("reading the deployed trigger: %w", err)
	}
	vars := trigger.Environment.Variables
	pools, err = coldstart.ReadPools(ctx, ssm.NewFromConfig(cfg), vars[coldstart.EnvPoolsParameter])
	return vars[coldstart.EnvTable], pools, err
}
