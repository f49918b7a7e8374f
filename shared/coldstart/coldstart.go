// Package coldstart gathers what every mediascale function reads once per
// cold start: its environment variables, the AWS configuration, and the pool
// configuration published in SSM.
package coldstart

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
	"github.com/mediascale/mediascale/shared/telemetry/tracing"
)

// Environment variables the CDK stack sets on every function.
const (
	EnvTable          = "MEDIASCALE_TABLE"
	EnvPoolsParameter = "MEDIASCALE_POOLS_PARAMETER"
	EnvEnvironment    = "MEDIASCALE_ENV"
	// EnvAccount is the account the function runs in, set on the
	// functions that act on events (the trigger): an event from any other
	// account is refused.
	EnvAccount = "MEDIASCALE_ACCOUNT"
)

// PoolsParameter is the SSM parameter where an environment's stack
// publishes its pool configuration, and TableParameter the one that holds
// the name of its node table. Their names are fixed, so that a dispatcher
// in another region finds a fallback pool's configuration and nodes from
// the environment's name alone.
func PoolsParameter(env string) string { return "/mediascale/" + env + "/pools" }

// TableParameter: see PoolsParameter.
func TableParameter(env string) string { return "/mediascale/" + env + "/table" }

// Env is a function's cold-start state.
type Env struct {
	AWS   aws.Config
	Pools pool.File
	Table string
	Log   *slog.Logger
}

// ParameterReader is the part of the SSM client needed to read the pools.
type ParameterReader interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Load reads the environment and the pool configuration. A missing variable
// or an invalid configuration is an init error: the function must not run
// with a half-read picture of the fleet.
func Load(ctx context.Context, function string) (*Env, error) {
	log := telemetry.Logger(function)
	table, err := require(EnvTable)
	if err != nil {
		return nil, err
	}
	param, err := require(EnvPoolsParameter)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	tracing.Instrument(&cfg)
	pools, err := ReadPools(ctx, ssm.NewFromConfig(cfg), param)
	if err != nil {
		return nil, err
	}
	if want := os.Getenv(EnvEnvironment); want != "" && want != pools.Environment {
		return nil, fmt.Errorf("parameter %s holds environment %q, but this function belongs to %q", param, pools.Environment, want)
	}
	log.Info("cold start", "table", table, "poolsParameter", param, "environment", pools.Environment, "pools", len(pools.Pools))
	return &Env{AWS: cfg, Pools: pools, Table: table, Log: log}, nil
}

// ReadPools fetches and validates the published pool configuration.
func ReadPools(ctx context.Context, c ParameterReader, name string) (pool.File, error) {
	out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: &name})
	if err != nil {
		return pool.File{}, fmt.Errorf("reading pool config parameter %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return pool.File{}, fmt.Errorf("pool config parameter %s has no value", name)
	}
	f, err := pool.ParseJSON([]byte(*out.Parameter.Value))
	if err != nil {
		return pool.File{}, fmt.Errorf("parameter %s: %w", name, err)
	}
	return f, nil
}

func require(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	return v, nil
}

// MustLoad is Load for a function's main: on failure it logs the reason
// and exits, which Lambda reports as an init error.
func MustLoad(function string) *Env {
	env, err := Load(context.Background(), function)
	if err != nil {
		slog.Error("cold start failed", "function", function, "error", err.Error())
		os.Exit(1)
	}
	return env
}

// MustOrigin is the account and region the function runs in, for a main
// whose function acts on events: without the account it logs why and
// exits, as an init error, rather than act on events from anywhere.
func (e *Env) MustOrigin() events.Origin {
	o := events.Origin{Account: os.Getenv(EnvAccount), Region: e.AWS.Region}
	if o.Account == "" || o.Region == "" {
		e.Log.Error("cold start failed: the function's account or region is unknown", "account", o.Account, "region", o.Region,
			"fix", "set "+EnvAccount+" (the stack sets it) and AWS_REGION")
		os.Exit(1)
	}
	return o
}

// Store is the node table of the environment.
func (e *Env) Store() *fleet.Store {
	return fleet.NewStore(dynamodb.NewFromConfig(e.AWS), e.Table, time.Now)
}
