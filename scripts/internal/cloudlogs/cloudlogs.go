// Package cloudlogs does on the local cloud what the Lambda service and
// CloudWatch Logs do on AWS with a function's output, and moto does not:
// it writes each invocation's log lines to the function's log group, and
// turns the CloudWatch embedded metric format documents among them into
// metrics. With it, a local run leaves the same logs and metrics behind as
// a run on AWS, and the dashboard's metrics can be checked locally.
package cloudlogs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// Logs is the part of the CloudWatch Logs client the shipper calls.
type Logs interface {
	CreateLogGroup(ctx context.Context, in *cloudwatchlogs.CreateLogGroupInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.CreateLogGroupOutput, error)
	CreateLogStream(ctx context.Context, in *cloudwatchlogs.CreateLogStreamInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.CreateLogStreamOutput, error)
	PutLogEvents(ctx context.Context, in *cloudwatchlogs.PutLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.PutLogEventsOutput, error)
}

// Metrics is the part of the CloudWatch client the shipper calls.
type Metrics interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Shipper ships invocation output.
type Shipper struct {
	logs    Logs
	metrics Metrics
}

// New builds a shipper.
func New(logs Logs, metrics Metrics) *Shipper { return &Shipper{logs: logs, metrics: metrics} }

// LogGroup is where Lambda writes a function's logs.
func LogGroup(function string) string { return "/aws/lambda/" + function }

// Ship writes one invocation's output, line by line, to a stream of the
// function's log group named as Lambda names them, and publishes the
// metrics its embedded metric format lines hold, in the function's region
// (the clients' own when empty). It returns how many metric data points
// it published.
func (s *Shipper) Ship(ctx context.Context, region, function, requestID string, output []byte, at time.Time) (int, error) {
	inRegion := func(o *cloudwatch.Options) {
		if region != "" {
			o.Region = region
		}
	}
	logsInRegion := func(o *cloudwatchlogs.Options) {
		if region != "" {
			o.Region = region
		}
	}
	group := LogGroup(function)
	stream := fmt.Sprintf("%s/[$LATEST]%s", at.UTC().Format("2006/01/02"), requestID)
	var events []logtypes.InputLogEvent
	published := 0
	for _, line := range bytes.Split(output, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		events = append(events, logtypes.InputLogEvent{Message: aws.String(string(line)), Timestamp: aws.Int64(at.UnixMilli())})
		ns, data, err := Extract(line)
		if err != nil {
			return published, fmt.Errorf("%s: %w", function, err)
		}
		if len(data) == 0 {
			continue
		}
		// PutMetricData takes at most 1000 data points per call.
		for start := 0; start < len(data); start += 1000 {
			end := min(start+1000, len(data))
			if _, err := s.metrics.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: data[start:end]}, inRegion); err != nil {
				return published, fmt.Errorf("publishing %s metrics of %s: %w", ns, function, err)
			}
		}
		published += len(data)
	}
	if len(events) == 0 {
		return published, nil
	}
	if _, err := s.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}, logsInRegion); err != nil {
		var missing *logtypes.ResourceNotFoundException
		if !errors.As(err, &missing) {
			return published, fmt.Errorf("creating log stream %s: %w", stream, err)
		}
		// A function deployed without its own log group: Lambda creates
		// the default one on first write, so do the same.
		if _, err := s.logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}, logsInRegion); err != nil {
			return published, fmt.Errorf("creating log group %s: %w", group, err)
		}
		if _, err := s.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}, logsInRegion); err != nil {
			return published, fmt.Errorf("creating log stream %s: %w", stream, err)
		}
	}
	if _, err := s.logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: events}, logsInRegion); err != nil {
		return published, fmt.Errorf("writing logs of %s: %w", function, err)
	}
	return published, nil
}

// Extract reads one log line as CloudWatch Logs does: a JSON object with an
// _aws member is an embedded metric format document, and yields one data
// point per metric and dimension set. Any other line yields nothing. A
// document that breaks the format is an error, because on AWS its metrics
// would be lost silently.
func Extract(line []byte) (string, []cwtypes.MetricDatum, error) {
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"_aws"`)) {
		return "", nil, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(line, &doc); err != nil {
		return "", nil, nil
	}
	var meta struct {
		Timestamp         *int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct {
				Name, Unit        string
				StorageResolution int32
			}
		}
	}
	if err := json.Unmarshal(doc["_aws"], &meta); err != nil || meta.Timestamp == nil || len(meta.CloudWatchMetrics) == 0 {
		return "", nil, fmt.Errorf("embedded metric document without a Timestamp and CloudWatchMetrics: %s", line)
	}
	at := time.UnixMilli(*meta.Timestamp)
	var ns string
	var data []cwtypes.MetricDatum
	for _, dir := range meta.CloudWatchMetrics {
		if ns != "" && dir.Namespace != ns {
			return "", nil, fmt.Errorf("one document, two namespaces (%s, %s): mediascale writes one", ns, dir.Namespace)
		}
		ns = dir.Namespace
		sets := dir.Dimensions
		if len(sets) == 0 {
			sets = [][]string{nil}
		}
		for _, m := range dir.Metrics {
			var value float64
			if err := json.Unmarshal(doc[m.Name], &value); err != nil {
				return "", nil, fmt.Errorf("metric %s has no numeric value: %s", m.Name, line)
			}
			for _, set := range sets {
				d := cwtypes.MetricDatum{MetricName: aws.String(m.Name), Value: aws.Float64(value), Timestamp: aws.Time(at)}
				if m.Unit != "" {
					d.Unit = cwtypes.StandardUnit(m.Unit)
				}
				if m.StorageResolution == 1 {
					d.StorageResolution = aws.Int32(1)
				}
				for _, name := range set {
					var v string
					if err := json.Unmarshal(doc[name], &v); err != nil {
						return "", nil, fmt.Errorf("dimension %s has no string value: %s", name, line)
					}
					d.Dimensions = append(d.Dimensions, cwtypes.Dimension{Name: aws.String(name), Value: aws.String(v)})
				}
				data = append(data, d)
			}
		}
	}
	return ns, data, nil
}
