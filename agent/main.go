// Command mediascale-agent runs on every media node as a systemd unit: it
// reports the node's load to CloudWatch and its heartbeat to the node
// table every interval (shared/agent). The deploy document writes its
// settings into /etc/mediascale/agent.env; flags override them for local
// runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mediascale/mediascale/shared/agent"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/telemetry"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mediascale-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	interval, _ := time.ParseDuration(envOr("MEDIASCALE_INTERVAL", "10s"))
	highRes, _ := strconv.ParseBool(envOr("MEDIASCALE_HIGH_RESOLUTION", "false"))
	healthPort, _ := strconv.Atoi(envOr("MEDIASCALE_HEALTH_PORT", "8080"))
	var cfg agent.Config
	var table string
	flag.StringVar(&cfg.Pool, "pool", os.Getenv("MEDIASCALE_POOL"), "the node's pool")
	flag.StringVar(&cfg.Node, "node", os.Getenv("MEDIASCALE_NODE"), "the node's id")
	flag.StringVar(&table, "table", os.Getenv("MEDIASCALE_TABLE"), "the node table")
	flag.StringVar(&cfg.Media.Host, "host", envOr("MEDIASCALE_HOST", "127.0.0.1"), "where the media server's statistics are served")
	flag.IntVar(&cfg.Media.HealthPort, "health-port", healthPort, "the media server's statistics port")
	flag.DurationVar(&cfg.Interval, "interval", interval, "time between two reports")
	flag.BoolVar(&cfg.HighResolution, "high-resolution", highRes, "store metrics at one-second resolution")
	flag.StringVar(&cfg.ProcStat, "proc-stat", "/proc/stat", "the kernel's CPU counters")
	flag.StringVar(&cfg.CPUPidFile, "cpu-pidfile", "", "count only this media server's process group as CPU (nodes that share a machine)")
	flag.Parse()
	if table == "" {
		return fmt.Errorf("the node table is not set (MEDIASCALE_TABLE or --table)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading AWS config: %w", err)
	}
	log := telemetry.Logger("agent")
	store := fleet.NewStore(dynamodb.NewFromConfig(awsCfg), table, time.Now)
	a, err := agent.New(cfg, cloudwatch.NewFromConfig(awsCfg), store, time.Now, log)
	if err != nil {
		return err
	}
	log.Info("reporting", "pool", cfg.Pool, "node", cfg.Node, "interval", cfg.Interval.String(), "host", cfg.Media.Host, "healthPort", cfg.Media.HealthPort)
	a.Run(ctx)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
