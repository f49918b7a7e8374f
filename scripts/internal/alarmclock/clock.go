// Package alarmclock is the part of CloudWatch and EventBridge that moto
// does not run, supplied for the local cloud in this one place: it
// evaluates the deployed metric alarms the way CloudWatch does (package
// alarm states the rules), sets their state, and delivers every state
// change, and every scheduled rule's tick, to the targets of the deployed
// EventBridge rules that match. EventBridge receives one "CloudWatch Alarm
// State Change" event per transition, never a repeat while the state
// holds (EventBridge user guide, "Event patterns").
package alarmclock

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/google/uuid"

	"github.com/mediascale/mediascale/shared/alarm"
)

// CloudWatch is what the clock reads and writes of moto's CloudWatch.
type CloudWatch interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
	SetAlarmState(ctx context.Context, in *cloudwatch.SetAlarmStateInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.SetAlarmStateOutput, error)
}

// EventBridge is what the clock reads of moto's EventBridge: the rules and
// their targets.
type EventBridge interface {
	ListRules(ctx context.Context, in *eventbridge.ListRulesInput, opts ...func(*eventbridge.Options)) (*eventbridge.ListRulesOutput, error)
	ListTargetsByRule(ctx context.Context, in *eventbridge.ListTargetsByRuleInput, opts ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error)
}

// Deliver hands an event to a rule's target (a Lambda function ARN), as
// EventBridge's asynchronous invocation does.
type Deliver func(ctx context.Context, target string, event []byte) error

// Clock runs the alarms and the scheduled rules of one local cloud.
type Clock struct {
	CW      CloudWatch
	Events  EventBridge
	Deliver Deliver
	Account string
	Region  string
	// Prefix limits the alarms evaluated (e.g. "mediascale-dev-").
	Prefix string
	// ScheduleSpeedup runs scheduled rules this many times as often as
	// their rate says (6: the per-minute controller every 10 s).
	ScheduleSpeedup int
	Log             *slog.Logger
	Now             func() time.Time

	mu        sync.Mutex
	evaluated map[string]time.Time
	ran       map[string]time.Time
	inFlight  sync.WaitGroup
}

// Run ticks every second until ctx ends, then waits for deliveries.
func (c *Clock) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := c.Tick(ctx); err != nil && ctx.Err() == nil {
			c.Log.Warn("clock tick", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			c.inFlight.Wait()
			return
		case <-t.C:
		}
	}
}

// Tick evaluates every alarm whose evaluation is due and runs every
// scheduled rule whose time has come.
func (c *Clock) Tick(ctx context.Context) error {
	c.mu.Lock()
	if c.evaluated == nil {
		c.evaluated, c.ran = map[string]time.Time{}, map[string]time.Time{}
	}
	c.mu.Unlock()
	rules, err := c.rules(ctx)
	if err != nil {
		return err
	}
	if err := c.alarms(ctx, rules); err != nil {
		return err
	}
	return c.schedules(ctx, rules)
}

// rule is a deployed EventBridge rule with its targets.
type rule struct {
	name, arn, schedule string
	pattern             map[string]any
	targets             []string
}

func (c *Clock) rules(ctx context.Context) ([]rule, error) {
	var out []rule
	var next *string
	for {
		page, err := c.Events.ListRules(ctx, &eventbridge.ListRulesInput{NextToken: next})
		if err != nil {
			return nil, fmt.Errorf("listing rules: %w", err)
		}
		for _, r := range page.Rules {
			if r.State != "ENABLED" && r.State != "" {
				continue
			}
			x := rule{name: aws.ToString(r.Name), arn: aws.ToString(r.Arn), schedule: aws.ToString(r.ScheduleExpression)}
			if p := aws.ToString(r.EventPattern); p != "" {
				if err := json.Unmarshal([]byte(p), &x.pattern); err != nil {
					return nil, fmt.Errorf("rule %s: event pattern: %w", x.name, err)
				}
			}
			ts, err := c.Events.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: r.Name})
			if err != nil {
				return nil, fmt.Errorf("listing the targets of %s: %w", x.name, err)
			}
			for _, t := range ts.Targets {
				x.targets = append(x.targets, aws.ToString(t.Arn))
			}
			out = append(out, x)
		}
		if next = page.NextToken; next == nil {
			return out, nil
		}
	}
}

// alarms evaluates the alarms that are due and delivers their changes.
func (c *Clock) alarms(ctx context.Context, rules []rule) error {
	now := c.Now().UTC()
	pages := cloudwatch.NewDescribeAlarmsPaginator(c.CW, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(c.Prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("reading alarms: %w", err)
		}
		for _, a := range page.MetricAlarms {
			d := definition(a)
			if d.Metric == "" || d.Period <= 0 {
				continue // metric-math alarms are not evaluated locally
			}
			due := now.Truncate(alarm.EvaluateEvery(d.Period))
			c.mu.Lock()
			last := c.evaluated[d.Name]
			c.mu.Unlock()
			if !due.After(last) {
				continue
			}
			values, err := c.values(ctx, d, now)
			if err != nil {
				return err
			}
			_, end := d.Range(now)
			c.mu.Lock()
			c.evaluated[d.Name] = due
			c.mu.Unlock()
			state, reason := alarm.Evaluate(d, end, values)
			if state == d.State {
				continue
			}
			if _, err := c.CW.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{
				AlarmName: aws.String(d.Name), StateValue: cwtypes.StateValue(state), StateReason: aws.String(reason),
			}); err != nil {
				return fmt.Errorf("setting %s to %s: %w", d.Name, state, err)
			}
			c.Log.Info("alarm state change", "alarm", d.Name, "from", d.State, "to", state, "reason", reason)
			c.publish(ctx, rules, c.stateChange(d, a, state, reason, now))
		}
	}
	return nil
}

// values reads one statistic per period of the alarm's evaluation range.
// It asks GetMetricData, which matches the alarm's dimensions exactly as
// CloudWatch does; moto's GetMetricStatistics also counts datapoints
// published with more dimensions (a node's own Pool+Node series would
// land in its pool's Pool series).
func (c *Clock) values(ctx context.Context, d alarm.Definition, now time.Time) ([]*float64, error) {
	start, end := d.Range(now)
	var dims []cwtypes.Dimension
	for k, v := range d.Dimensions {
		dims = append(dims, cwtypes.Dimension{Name: aws.String(k), Value: aws.String(v)})
	}
	out, err := c.CW.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("m"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(d.Namespace), MetricName: aws.String(d.Metric), Dimensions: dims},
			Period: aws.Int32(int32(d.Period.Seconds())), Stat: aws.String(d.Statistic),
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s for %s: %w", d.Metric, d.Name, err)
	}
	values := make([]*float64, d.RangePeriods())
	for _, r := range out.MetricDataResults {
		for j, at := range r.Timestamps {
			i := int(at.Sub(start) / d.Period)
			if i < 0 || i >= len(values) || j >= len(r.Values) {
				continue
			}
			v := r.Values[j]
			values[i] = &v
		}
	}
	return values, nil
}

func definition(a cwtypes.MetricAlarm) alarm.Definition {
	d := alarm.Definition{
		Name: aws.ToString(a.AlarmName), Description: aws.ToString(a.AlarmDescription),
		Namespace: aws.ToString(a.Namespace), Metric: aws.ToString(a.MetricName), Dimensions: map[string]string{},
		Statistic: string(a.Statistic), Period: time.Duration(aws.ToInt32(a.Period)) * time.Second,
		EvaluationPeriods: int(aws.ToInt32(a.EvaluationPeriods)), DatapointsToAlarm: int(aws.ToInt32(a.DatapointsToAlarm)),
		Threshold: aws.ToFloat64(a.Threshold), ComparisonOperator: string(a.ComparisonOperator),
		TreatMissingData: aws.ToString(a.TreatMissingData), State: string(a.StateValue),
	}
	for _, dim := range a.Dimensions {
		d.Dimensions[aws.ToString(dim.Name)] = aws.ToString(dim.Value)
	}
	return d
}

// stateChange is the EventBridge event CloudWatch sends for a transition.
func (c *Clock) stateChange(d alarm.Definition, a cwtypes.MetricAlarm, state, reason string, now time.Time) map[string]any {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }
	prevAt := aws.ToTime(a.StateUpdatedTimestamp)
	if prevAt.IsZero() {
		prevAt = now
	}
	return map[string]any{
		"version": "0", "id": uuid.NewString(), "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
		"account": c.Account, "time": now.Format(time.RFC3339), "region": c.Region,
		"resources": []string{aws.ToString(a.AlarmArn)},
		"detail": map[string]any{
			"alarmName":     d.Name,
			"state":         map[string]any{"value": state, "reason": reason, "timestamp": stamp(now)},
			"previousState": map[string]any{"value": d.State, "reason": aws.ToString(a.StateReason), "timestamp": stamp(prevAt)},
			"configuration": map[string]any{"description": d.Description},
		},
	}
}

var ratePattern = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// schedules runs each scheduled rule whose (sped-up) rate has passed.
func (c *Clock) schedules(ctx context.Context, rules []rule) error {
	now := c.Now().UTC()
	for _, r := range rules {
		m := ratePattern.FindStringSubmatch(r.schedule)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
		every := time.Duration(n) * unit / time.Duration(max(c.ScheduleSpeedup, 1))
		c.mu.Lock()
		last, seen := c.ran[r.name]
		if seen && now.Sub(last) < every {
			c.mu.Unlock()
			continue
		}
		c.ran[r.name] = now
		c.mu.Unlock()
		ev := map[string]any{
			"version": "0", "id": uuid.NewString(), "detail-type": "Scheduled Event", "source": "aws.events",
			"account": c.Account, "time": now.Format(time.RFC3339), "region": c.Region, "resources": []string{r.arn}, "detail": map[string]any{},
		}
		c.send(ctx, r, ev)
	}
	return nil
}

// publish delivers an event to the targets of every rule whose pattern
// matches it.
func (c *Clock) publish(ctx context.Context, rules []rule, ev map[string]any) {
	for _, r := range rules {
		if r.pattern != nil && Matches(r.pattern, ev) {
			c.send(ctx, r, ev)
		}
	}
}

// send invokes a rule's targets without waiting, as EventBridge does.
func (c *Clock) send(ctx context.Context, r rule, ev map[string]any) {
	raw, _ := json.Marshal(ev)
	for _, target := range r.targets {
		c.inFlight.Add(1)
		go func() {
			defer c.inFlight.Done()
			if err := c.Deliver(context.WithoutCancel(ctx), target, raw); err != nil {
				c.Log.Warn("delivery failed", "rule", r.name, "target", target, "error", err.Error())
			}
		}()
	}
}

// Matches reports whether an event matches an EventBridge pattern: every
// field of the pattern must be in the event; a list matches when the
// event's value equals one of its values or matches one of its
// {"prefix": ...} filters; an object matches the event's object field by
// field.
func Matches(pattern, event map[string]any) bool {
	for k, want := range pattern {
		got, ok := event[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !ok || !Matches(w, sub) {
				return false
			}
		case []any:
			if !matchesOne(w, got) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func matchesOne(options []any, got any) bool {
	s, isString := got.(string)
	for _, o := range options {
		switch f := o.(type) {
		case map[string]any:
			if p, ok := f["prefix"].(string); ok && isString && strings.HasPrefix(s, p) {
				return true
			}
		default:
			if fmt.Sprint(f) == fmt.Sprint(got) {
				return true
			}
		}
	}
	return false
}
