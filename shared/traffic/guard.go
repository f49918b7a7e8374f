package traffic

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// Namespace holds the per-node metrics media nodes publish (dimensions
// Pool and Node) and their pool-wide aggregates (dimension Pool):
// Connections (count), BandwidthMbps, ErrorRatePercent.
const Namespace = telemetry.Namespace

// CloudWatch is the part of the CloudWatch client the guard uses.
type CloudWatch interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// Reading is what the guard read: each metric's value (nil when there were
// no datapoints) and each guard alarm's state ("" when it does not exist).
type Reading struct {
	NodeCPU         *float64
	NodeConnections *float64
	PoolErrorRate   *float64
	// PoolLoad is the ACTIVE nodes' average load per scaling metric, what
	// the scale-out alarms watch; a metric without datapoints is absent.
	PoolLoad map[pool.Metric]float64
	// PoolRefused is the sessions the entry dispatcher refused in the
	// pool's latest minute (nil without datapoints).
	PoolRefused *float64
	Alarms      map[string]string
}

// Pressure reports whether the pool is overloaded by its own scale-out
// alarms' measure: some metric's average over the ACTIVE nodes above its
// threshold. Then the new node's share is worth more than a long bake.
func Pressure(p pool.Pool, r Reading) (bool, string) {
	for _, m := range pool.Metrics {
		a := p.Alarm(pool.ScaleOut, m)
		if v, ok := r.PoolLoad[m]; ok && a.Threshold > 0 && v > a.Threshold {
			return true, fmt.Sprintf("pool %s %.4g above the scale-out threshold %.4g", a.What, v, a.Threshold)
		}
	}
	return false, ""
}

// Verdict is the guard's decision with its reasons.
type Verdict struct {
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons"`
}

// Evaluate judges a reading against a guard. A metric without datapoints
// does not trip the guard (a node minutes old may not have reported yet)
// but is named in the reasons. A guard alarm must exist and be OK: a
// missing alarm is never read as OK.
func Evaluate(g pool.Guard, r Reading) Verdict {
	v := Verdict{OK: true}
	check := func(name string, value *float64, limit float64) {
		switch {
		case value == nil:
			v.Reasons = append(v.Reasons, fmt.Sprintf("%s: no datapoints, not judged", name))
		case *value > limit:
			v.OK = false
			v.Reasons = append(v.Reasons, fmt.Sprintf("%s %.1f above the limit %.1f", name, *value, limit))
		default:
			v.Reasons = append(v.Reasons, fmt.Sprintf("%s %.1f within %.1f", name, *value, limit))
		}
	}
	check("node CPU %", r.NodeCPU, g.MaxCPUPercent)
	check("node connections", r.NodeConnections, float64(g.MaxConnectionsPerNode))
	check("pool error rate %", r.PoolErrorRate, g.MaxErrorRatePercent)
	for _, name := range g.Alarms {
		switch st := r.Alarms[name]; st {
		case "":
			v.OK = false
			v.Reasons = append(v.Reasons, fmt.Sprintf("alarm %s does not exist", name))
		case string(types.StateValueOk):
			v.Reasons = append(v.Reasons, fmt.Sprintf("alarm %s OK", name))
		default:
			v.OK = false
			v.Reasons = append(v.Reasons, fmt.Sprintf("alarm %s is %s", name, st))
		}
	}
	return v
}

// Guard reads what Evaluate judges.
type Guard struct {
	cw  CloudWatch
	now func() time.Time
}

// NewGuard returns a Guard.
func NewGuard(cw CloudWatch, now func() time.Time) *Guard { return &Guard{cw: cw, now: now} }

func dim(k, v string) types.Dimension {
	return types.Dimension{Name: aws.String(k), Value: aws.String(v)}
}

// query asks for one metric's one-minute statistic.
func query(id, ns, metric, stat string, dims ...types.Dimension) types.MetricDataQuery {
	return types.MetricDataQuery{Id: aws.String(id), MetricStat: &types.MetricStat{
		Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(metric), Dimensions: dims},
		Period: aws.Int32(60), Stat: aws.String(stat),
	}}
}

// Read fetches the node's and pool's metrics over the window that just
// baked, and the states of the guard's alarms.
func (g *Guard) Read(ctx context.Context, p pool.Pool, node, instanceID string, guard pool.Guard, window time.Duration) (Reading, error) {
	// Align to whole minutes, ending after now, so the datapoints of the
	// minute in progress count too.
	end := g.now().UTC().Truncate(time.Minute).Add(time.Minute)
	if window < time.Minute {
		window = time.Minute
	}
	window += time.Minute
	queries := []types.MetricDataQuery{
		query("cpu", "AWS/EC2", "CPUUtilization", "Average", dim("InstanceId", instanceID)),
		query("conn", Namespace, "Connections", "Maximum", dim("Pool", p.Name), dim("Node", node)),
		query("errors", Namespace, "ErrorRatePercent", "Average", dim("Pool", p.Name)),
		query("refused", Namespace, telemetry.SessionsRefused, "Sum", dim("Pool", p.Name)),
	}
	for _, m := range pool.Metrics {
		queries = append(queries, query("pool_"+string(m), Namespace, p.Alarm(pool.ScaleOut, m).MetricName, "Average", dim("Pool", p.Name)))
	}
	out, err := g.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(end.Add(-window)), EndTime: aws.Time(end), MetricDataQueries: queries,
	})
	if err != nil {
		return Reading{}, fmt.Errorf("reading guard metrics of node %s: %w", node, err)
	}
	r := Reading{PoolLoad: map[pool.Metric]float64{}}
	for _, res := range out.MetricDataResults {
		if len(res.Values) == 0 {
			continue
		}
		// The newest datapoint speaks for the step just baked.
		latest := newest(res)
		switch id := aws.ToString(res.Id); id {
		case "cpu":
			r.NodeCPU = &latest
		case "conn":
			r.NodeConnections = &latest
		case "errors":
			r.PoolErrorRate = &latest
		case "refused":
			r.PoolRefused = &latest
		default:
			if m, ok := strings.CutPrefix(id, "pool_"); ok {
				r.PoolLoad[pool.Metric(m)] = latest
			}
		}
	}
	r.Alarms = map[string]string{}
	if len(guard.Alarms) > 0 {
		al, err := g.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: guard.Alarms})
		if err != nil {
			return Reading{}, fmt.Errorf("reading guard alarms: %w", err)
		}
		for _, a := range al.MetricAlarms {
			r.Alarms[aws.ToString(a.AlarmName)] = string(a.StateValue)
		}
		for _, a := range al.CompositeAlarms {
			r.Alarms[aws.ToString(a.AlarmName)] = string(a.StateValue)
		}
	}
	return r, nil
}

func newest(res types.MetricDataResult) float64 {
	idx := make([]int, len(res.Values))
	for i := range idx {
		idx[i] = i
	}
	if len(res.Timestamps) == len(res.Values) {
		sort.Slice(idx, func(a, b int) bool { return res.Timestamps[idx[a]].After(res.Timestamps[idx[b]]) })
	}
	return res.Values[idx[0]]
}

// Connections reads each node's latest session count from the per-node
// Connections metric over the last window. A node without datapoints is
// absent from the map: scale-in treats it as unknown, never as idle.
func (g *Guard) Connections(ctx context.Context, poolName string, nodes []string, window time.Duration) (map[string]float64, error) {
	out := map[string]float64{}
	end := g.now().UTC().Truncate(time.Minute).Add(time.Minute)
	for start := 0; start < len(nodes); start += 400 {
		batch := nodes[start:min(start+400, len(nodes))]
		queries := make([]types.MetricDataQuery, len(batch))
		for i, n := range batch {
			queries[i] = query(fmt.Sprintf("n%d", i), Namespace, "Connections", "Maximum", dim("Pool", poolName), dim("Node", n))
		}
		res, err := g.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(end.Add(-window - time.Minute)), EndTime: aws.Time(end), MetricDataQueries: queries,
		})
		if err != nil {
			return nil, fmt.Errorf("reading connections of pool %s: %w", poolName, err)
		}
		for _, r := range res.MetricDataResults {
			var i int
			if _, err := fmt.Sscanf(aws.ToString(r.Id), "n%d", &i); err != nil || i >= len(batch) || len(r.Values) == 0 {
				continue
			}
			out[batch[i]] = newest(r)
		}
	}
	return out, nil
}
