package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/rollback"
	"github.com/mediascale/mediascale/shared/traffic"
)

// Store is what the reconciler needs from the node table.
type Store interface {
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
	GetLock(ctx context.Context, pool string) (fleet.Lease, bool, error)
	ReleaseLock(ctx context.Context, pool, owner string) (bool, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
}

// Instances lists, finds and terminates tagged instances.
type Instances interface {
	Tagged(ctx context.Context, pool string) ([]compute.Tagged, error)
	FindByNode(ctx context.Context, node string) (compute.Launched, bool, error)
	Terminate(ctx context.Context, id string) error
}

// Executions tells whether an execution still runs.
type Executions interface {
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Metrics receives one datapoint per finding kind and pool.
type Metrics interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Report is what one reconciler run found and did, by pool.
type Report struct {
	Findings map[string][]Finding `json:"findings"`
	Errors   []string             `json:"errors,omitempty"`
}

// LogAttrs summarises the run.
func (r Report) LogAttrs() []any {
	n := 0
	for _, f := range r.Findings {
		n += len(f)
	}
	return []any{"findings", n, "errors", len(r.Errors)}
}

// Handler is the reconciler function, run on a schedule.
type Handler struct {
	store      Store
	instances  Instances
	weights    func(mode string) (traffic.Weights, error)
	executions Executions
	metrics    Metrics
	machines   []string
	pools      pool.File
	grace      time.Duration
	stuck      time.Duration
	now        func() time.Time
	log        *slog.Logger
}

// NewHandler builds the reconciler. machines are the ARNs of the state
// machines whose executions may own locks and nodes.
func NewHandler(store Store, instances Instances, weights func(mode string) (traffic.Weights, error), executions Executions, metrics Metrics,
	machines []string, pools pool.File, grace, stuck time.Duration, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{store: store, instances: instances, weights: weights, executions: executions, metrics: metrics,
		machines: machines, pools: pools, grace: grace, stuck: stuck, now: now, log: log}
}

// Handle is the Lambda entry point; the scheduled event's content is not
// used.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Report, error) {
	return invocation.Handler("reconcile", h.log, h.now, func(ctx context.Context, _ json.RawMessage) (Report, error) {
		return h.run(ctx), nil
	})
}

// run reconciles every pool; a failure in one pool is reported and the
// others still get their turn.
func (h *Handler) run(ctx context.Context) Report {
	r := Report{Findings: map[string][]Finding{}}
	for _, p := range h.pools.Pools {
		found, err := h.pool(ctx, p)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("pool %s: %v", p.Name, err))
		}
		r.Findings[p.Name] = found
	}
	return r
}

func (h *Handler) pool(ctx context.Context, p pool.Pool) ([]Finding, error) {
	nodes, err := h.store.ListNodes(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	tagged, err := h.instances.Tagged(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	in := Input{Now: h.now(), Nodes: nodes, Running: h.runningCache(ctx), OrphanGrace: h.grace, StuckAfter: h.stuck}
	for _, t := range tagged {
		in.Instances = append(in.Instances, Instance(t))
	}
	if l, held, err := h.store.GetLock(ctx, p.Name); err != nil {
		return nil, err
	} else if held {
		in.Lock = &l
	}
	found := Find(in)
	byID := map[string]fleet.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	counts := map[string]int{}
	var errs []error
	for i, f := range found {
		counts[f.Kind]++
		if err := h.act(ctx, p, f, byID[f.Node], in.Lock); err != nil {
			found[i].Reason += "; action failed: " + err.Error()
			errs = append(errs, err)
		}
		h.log.WarnContext(ctx, "drift", "step", "reconcile", "pool", p.Name, "kind", f.Kind, "node", f.Node,
			"instance", f.Instance, "action", f.Action, "reason", found[i].Reason)
	}
	if err := h.publish(ctx, p.Name, counts); err != nil {
		errs = append(errs, err)
	}
	return found, errors.Join(errs...)
}

// act carries out one finding's action.
func (h *Handler) act(ctx context.Context, p pool.Pool, f Finding, n fleet.Node, lock *fleet.Lease) error {
	switch f.Action {
	case actTerminate:
		return h.instances.Terminate(ctx, f.Instance)
	case actRelease:
		_, err := h.store.ReleaseLock(ctx, p.Name, lock.Owner)
		return err
	case actDrainOn:
		return h.trafficOff(ctx, p, n)
	case actTerminated:
		// A drain that stopped early may have claimed the node without
		// taking its traffic off: the record goes before the instance.
		if err := h.trafficOff(ctx, p, n); err != nil {
			return err
		}
		if f.Kind == StuckNode && n.InstanceID != "" {
			if err := h.instances.Terminate(ctx, n.InstanceID); err != nil {
				return err
			}
		}
		_, err := h.store.Transition(ctx, p.Name, n.ID, n.State, n.Version, fleet.Terminated, fleet.Change{Reason: "reconciler: " + f.Reason})
		return err
	case actFail, actRollBack:
		if n.State == fleet.Draining && f.Kind == StuckNode {
			return h.act(ctx, p, Finding{Kind: f.Kind, Node: f.Node, Action: actTerminated, Reason: f.Reason}, n, lock)
		}
		return h.rollBack(ctx, p, n, f.Reason)
	}
	return nil
}

// trafficOff takes a draining node's traffic away; a pool whose traffic
// mode has no weights has none to take.
func (h *Handler) trafficOff(ctx context.Context, p pool.Pool, n fleet.Node) error {
	w, err := h.weights(p.Traffic.Mode)
	if err != nil {
		return nil
	}
	if err := w.Remove(ctx, p, n.ID, n.Endpoint); err != nil {
		return fmt.Errorf("taking traffic off draining node %s: %w", n.ID, err)
	}
	return nil
}

// rollBack takes a node out the way the workflow's rollback does.
func (h *Handler) rollBack(ctx context.Context, p pool.Pool, n fleet.Node, reason string) error {
	// A pool whose traffic mode has no weights has no record to remove;
	// terminating the instance still ends its traffic.
	w, _ := h.weights(p.Traffic.Mode)
	_, err := rollback.Undo(ctx, h.store, h.instances, w, p, n, "reconciler: "+reason)
	return err
}

// runningCache answers whether an execution runs, asking Step Functions
// once per execution per run. An execution name is looked up under each
// state machine; one found nowhere has ended (or never was). An error
// other than "does not exist" counts as running: acting on a node that an
// execution still moves would be worse than waiting one more run.
func (h *Handler) runningCache(ctx context.Context) func(string) bool {
	seen := map[string]bool{}
	return func(execution string) bool {
		if v, ok := seen[execution]; ok {
			return v
		}
		running := false
		for _, m := range h.machines {
			arn := strings.Replace(m, ":stateMachine:", ":execution:", 1) + ":" + execution
			out, err := h.executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
			var missing *sfntypes.ExecutionDoesNotExist
			if errors.As(err, &missing) {
				continue
			}
			if err != nil {
				h.log.WarnContext(ctx, "cannot tell whether an execution runs; leaving its resources alone", "execution", execution, "error", err.Error())
				running = true
				break
			}
			running = out.Status == sfntypes.ExecutionStatusRunning
			break
		}
		seen[execution] = running
		return running
	}
}

// publish sends one datapoint per kind, zero included, so a dashboard
// shows a clean run as well as a dirty one.
func (h *Handler) publish(ctx context.Context, poolName string, counts map[string]int) error {
	var data []cwtypes.MetricDatum
	for _, kind := range []string{Orphan, Vanished, StaleLock, StuckNode} {
		data = append(data, cwtypes.MetricDatum{
			MetricName: aws.String("ReconcilerFindings"), Value: aws.Float64(float64(counts[kind])), Unit: cwtypes.StandardUnitCount,
			Timestamp:  aws.Time(h.now()),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String(poolName)}, {Name: aws.String("Kind"), Value: aws.String(kind)}},
		})
	}
	_, err := h.metrics.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(traffic.Namespace), MetricData: data})
	if err != nil {
		return fmt.Errorf("publishing reconciler findings: %w", err)
	}
	return nil
}
