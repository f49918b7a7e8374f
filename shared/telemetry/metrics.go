package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Namespace is the CloudWatch namespace of every mediascale metric: the
// ones media nodes publish and the ones the functions publish about their
// own work (see README.md, "Metrics").
const Namespace = "Mediascale"

// The entry dispatcher's metrics, per pool and per pool and class: the
// controller reads SessionsRefused as demand, so the trigger and the
// dispatcher share the names here rather than the trigger importing the
// dispatcher.
const (
	SessionsDispatched = "SessionsDispatched"
	SessionsRefused    = "SessionsRefused"
	SessionsSpilled    = "SessionsSpilled"
)

// Units of the metrics the functions publish, as CloudWatch spells them.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
	Seconds      = "Seconds"
)

// Metric is one value of a metrics document.
type Metric struct {
	Name  string
	Value float64
	Unit  string
	// HighResolution stores the metric at one-second resolution
	// (StorageResolution 1), for readers that need it by the ten seconds.
	HighResolution bool
}

// Dimension is one dimension's name and value.
type Dimension struct {
	Name, Value string
}

// EmitMetrics writes one CloudWatch embedded metric format document as a
// log line. CloudWatch Logs turns it into metrics, one per dimension set
// listed in sets, so a step pays no API call and its role needs no
// cloudwatch:PutMetricData. Every name in sets must be one of dims; a set
// naming a missing dimension is a programming error and is refused before
// it can silently drop the metric.
func EmitMetrics(ctx context.Context, log *slog.Logger, at time.Time, dims []Dimension, sets [][]string, metrics ...Metric) error {
	return EmitEvent(ctx, log, "metrics", nil, at, dims, sets, metrics...)
}

// EmitEvent is EmitMetrics on a log line of its own: msg and the attrs
// say what happened, the metrics count it, so a request that is both an
// event and a datapoint costs one line.
func EmitEvent(ctx context.Context, log *slog.Logger, msg string, extra []any, at time.Time, dims []Dimension, sets [][]string, metrics ...Metric) error {
	values := map[string]string{}
	attrs := make([]any, 0, 2*(len(dims)+len(metrics))+1+len(extra))
	attrs = append(attrs, extra...)
	for _, d := range dims {
		values[d.Name] = d.Value
		attrs = append(attrs, d.Name, d.Value)
	}
	for _, set := range sets {
		for _, name := range set {
			if _, ok := values[name]; !ok {
				return fmt.Errorf("metrics: dimension set %v names %q, which has no value", set, name)
			}
		}
	}
	type definition struct {
		Name              string `json:"Name"`
		Unit              string `json:"Unit"`
		StorageResolution int    `json:"StorageResolution,omitempty"`
	}
	defs := make([]definition, len(metrics))
	for i, m := range metrics {
		defs[i] = definition{Name: m.Name, Unit: m.Unit}
		if m.HighResolution {
			defs[i].StorageResolution = 1
		}
		attrs = append(attrs, m.Name, m.Value)
	}
	attrs = append(attrs, slog.Any("_aws", map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": sets,
			"Metrics":    defs,
		}},
	}))
	log.InfoContext(ctx, msg, attrs...)
	return nil
}
