// Package alarm evaluates a CloudWatch metric alarm the way CloudWatch
// does, as a pure function: the local cloud's alarm clock uses it where
// moto runs no alarms, and the simulator uses it for every policy that
// acts on alarms.
//
// The rules it follows, from the CloudWatch user guide ("Using Amazon
// CloudWatch alarms", "Configuring how CloudWatch alarms treat missing
// data"):
//
//   - An alarm looks at its last EvaluationPeriods complete periods of
//     Period seconds, aligned to the period, each reduced by its
//     statistic. Alarms with a period of a minute or more are evaluated
//     every minute; 10 s and 30 s (high-resolution) ones every 10 s.
//   - It goes to ALARM when at least DatapointsToAlarm of those periods
//     breach (DatapointsToAlarm defaults to EvaluationPeriods).
//   - treatMissingData: notBreaching counts a missing period as good,
//     breaching as breaching; missing (the default) and ignore leave it
//     out. With missing, an evaluation range with no datapoint at all
//     makes the alarm INSUFFICIENT_DATA; with ignore, it keeps its state.
//   - It goes to OK when enough periods are good that ALARM is no longer
//     possible; otherwise (too few datapoints to decide) it keeps its
//     state.
package alarm

import (
	"fmt"
	"strings"
	"time"
)

// Alarm states.
const (
	OK               = "OK"
	Alarm            = "ALARM"
	InsufficientData = "INSUFFICIENT_DATA"
)

// Definition is a metric alarm as deployed.
type Definition struct {
	Name               string
	Description        string
	Namespace, Metric  string
	Dimensions         map[string]string
	Statistic          string
	Period             time.Duration
	EvaluationPeriods  int
	DatapointsToAlarm  int
	Threshold          float64
	ComparisonOperator string
	TreatMissingData   string
	State              string
}

// EvaluateEvery is how often CloudWatch evaluates an alarm with this
// period.
func EvaluateEvery(period time.Duration) time.Duration {
	if period < time.Minute {
		return 10 * time.Second
	}
	return time.Minute
}

// Range returns the evaluation range at now: the start of the oldest and
// the end of the newest complete period.
func (d Definition) Range(now time.Time) (start, end time.Time) {
	end = now.Truncate(d.Period)
	return end.Add(-time.Duration(d.EvaluationPeriods) * d.Period), end
}

func (d Definition) breaches(v float64) bool {
	switch d.ComparisonOperator {
	case "GreaterThanThreshold":
		return v > d.Threshold
	case "GreaterThanOrEqualToThreshold":
		return v >= d.Threshold
	case "LessThanThreshold":
		return v < d.Threshold
	case "LessThanOrEqualToThreshold":
		return v <= d.Threshold
	}
	return false
}

// Evaluate decides an alarm's state from one value per period of its
// evaluation range, oldest first, nil for a period without datapoints. It
// returns the state and CloudWatch-style reason text.
func Evaluate(d Definition, values []*float64) (state, reason string) {
	m := d.DatapointsToAlarm
	if m <= 0 {
		m = d.EvaluationPeriods
	}
	var bad, good, missing int
	var shown []string
	for _, v := range values {
		if v == nil {
			missing++
			shown = append(shown, "missing")
			continue
		}
		shown = append(shown, fmt.Sprintf("%g", *v))
		if d.breaches(*v) {
			bad++
		} else {
			good++
		}
	}
	switch d.TreatMissingData {
	case "breaching":
		bad += missing
	case "notBreaching":
		good += missing
	}
	n := len(values)
	word := map[bool]string{true: "were", false: "were not"}
	switch {
	case bad >= m:
		return Alarm, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] %s %s the threshold (%g).",
			bad, n, strings.Join(shown, ", "), word[true], opWord(d.ComparisonOperator), d.Threshold)
	case good > n-m:
		return OK, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] %s %s the threshold (%g).",
			good, n, strings.Join(shown, ", "), word[false], opWord(d.ComparisonOperator), d.Threshold)
	case missing == n && d.TreatMissingData != "ignore":
		return InsufficientData, fmt.Sprintf("Insufficient Data: %d datapoints were unknown.", n)
	}
	state = d.State
	if state == "" {
		state = InsufficientData
	}
	return state, "too few datapoints to decide: the state holds"
}

func opWord(op string) string {
	switch op {
	case "GreaterThanThreshold":
		return "greater than"
	case "GreaterThanOrEqualToThreshold":
		return "greater than or equal to"
	case "LessThanThreshold":
		return "less than"
	default:
		return "less than or equal to"
	}
}
