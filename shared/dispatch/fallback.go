package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// FallbackOpener finds a fallback pool where its own stack publishes it:
// the pool's configuration, and a reader of its nodes in its region.
type FallbackOpener interface {
	OpenFallback(ctx context.Context, f pool.Fallback) (pool.Pool, NodeLister, error)
}

// Reopen is how long the dispatcher waits before it looks for a fallback
// again after it could not be opened: another region's stack that is not
// deployed, or not reachable, must not cost every refused session two
// cross-region calls.
const Reopen = 10 * time.Second

// Regions opens fallbacks in their own regions with the dispatcher's own
// credentials: one SSM read of the fallback environment's published pool
// configuration and table name when a pool first spills, then one query
// of its table a second at most while it goes on spilling (the Handler's
// cache), never a cross-region call per session.
type Regions struct {
	// Parameters and Tables make the SSM and DynamoDB clients of a region.
	Parameters func(region string) coldstart.ParameterReader
	Tables     func(region string) fleet.DynamoDB
	Now        func() time.Time
}

// NewRegions opens fallbacks with clients made from cfg, in each
// fallback's region.
func NewRegions(cfg aws.Config, now func() time.Time) *Regions {
	return &Regions{
		Parameters: func(region string) coldstart.ParameterReader {
			return ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = region })
		},
		Tables: func(region string) fleet.DynamoDB {
			return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.Region = region })
		},
		Now: now,
	}
}

// OpenFallback implements FallbackOpener.
func (r *Regions) OpenFallback(ctx context.Context, f pool.Fallback) (pool.Pool, NodeLister, error) {
	params := r.Parameters(f.Region)
	file, err := coldstart.ReadPools(ctx, params, coldstart.PoolsParameter(f.Environment))
	if err != nil {
		return pool.Pool{}, nil, fmt.Errorf("fallback %s: %w", f, err)
	}
	if file.Environment != f.Environment {
		return pool.Pool{}, nil, fmt.Errorf("fallback %s: its parameter holds environment %q", f, file.Environment)
	}
	p, ok := file.Find(f.Pool)
	if !ok {
		return pool.Pool{}, nil, fmt.Errorf("fallback %s: environment %s has no pool %s", f, f.Environment, f.Pool)
	}
	if p.Region != f.Region {
		return pool.Pool{}, nil, fmt.Errorf("fallback %s: the pool is configured in region %s", f, p.Region)
	}
	name := coldstart.TableParameter(f.Environment)
	out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: &name})
	if err != nil {
		return pool.Pool{}, nil, fmt.Errorf("fallback %s: reading its table name from %s: %w", f, name, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return pool.Pool{}, nil, fmt.Errorf("fallback %s: parameter %s has no value", f, name)
	}
	return p, fleet.NewStore(r.Tables(f.Region), *out.Parameter.Value, r.Now), nil
}
