// Package alarm evaluates a CloudWatch metric alarm the way CloudWatch
// does, as a pure function: the local cloud's alarm clock uses it where
// moto runs no alarms, and the simulator uses it for every policy that
// acts on alarms.
//
// The rules it follows are the CloudWatch user guide's ("Using Amazon
// CloudWatch alarms": "Evaluating an alarm", "How alarm state is evaluated
// when data is missing", "Avoiding premature transitions to alarm state"):
//
//   - An alarm with a period of a minute or more is evaluated every
//     minute; a high-resolution one (10, 20 or 30 s) every 10 s. Each
//     period is reduced by the alarm's statistic.
//   - It retrieves an evaluation range longer than its EvaluationPeriods
//     (N). The guide gives one size only, 5 periods for N = 3, and says
//     the size depends on the period and the resolution without saying
//     how (awsdocs/amazon-cloudwatch-user-guide issue 102 asked, and was
//     closed unanswered). We chose N + 2 periods for every period and
//     resolution: it is the guide's 5 for its N of 3, and the only size
//     its tables show.
//   - With at least N real datapoints in the range, the N most recent
//     real ones are evaluated, reaching back past missing periods, and
//     treatMissingData is not used: ALARM when at least DatapointsToAlarm
//     (M, N when unset) breach, else OK.
//   - With fewer than N, missing ones fill the gap, as few as possible:
//     every real datapoint in the range counts, plus N minus their number
//     filled. breaching and notBreaching fill with that; the M of N rule
//     then decides.
//   - missing and ignore fill with nothing. The real datapoints alarm when
//     M of them breach, and make the alarm OK when any of them does not
//     breach. Otherwise (no real datapoint, or only breaching ones too
//     few for M), missing goes to ALARM when the oldest breaching
//     datapoint of the range is at least M periods old and every later
//     period is breaching or missing (the guide's premature-transition
//     rule: "- - X - -" alarms, "- - - - X" does not yet), and to
//     INSUFFICIENT_DATA otherwise; ignore keeps the current state.
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

// Treatments of missing data, as CloudWatch spells them.
const (
	TreatMissing      = "missing"
	TreatIgnore       = "ignore"
	TreatBreaching    = "breaching"
	TreatNotBreaching = "notBreaching"
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

// rangeExtra is how many periods the evaluation range reaches back past
// the evaluation periods (the package comment says why 2).
const rangeExtra = 2

// EvaluateEvery is how often CloudWatch evaluates an alarm with this
// period.
func EvaluateEvery(period time.Duration) time.Duration {
	if period < time.Minute {
		return 10 * time.Second
	}
	return time.Minute
}

// RangePeriods is how many periods the evaluation range holds.
func (d Definition) RangePeriods() int { return d.EvaluationPeriods + rangeExtra }

// Range returns the evaluation range at now: the start of the oldest and
// the end of the newest complete period.
func (d Definition) Range(now time.Time) (start, end time.Time) {
	end = now.Truncate(d.Period)
	return end.Add(-time.Duration(d.RangePeriods()) * d.Period), end
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

// point is one datapoint of the range: its period's start and value.
type point struct {
	at    time.Time
	value float64
}

// Evaluate decides an alarm's state from one value per period of its
// evaluation range (RangePeriods of them, oldest first, nil for a period
// without datapoints; the newest period ends at end). It returns the state
// and the reason in CloudWatch's words.
func Evaluate(d Definition, end time.Time, values []*float64) (state, reason string) {
	n := d.EvaluationPeriods
	m := d.DatapointsToAlarm
	if m <= 0 || m > n {
		m = n
	}
	start := end.Add(-time.Duration(len(values)) * d.Period)
	var real []point
	for i, v := range values {
		if v != nil {
			real = append(real, point{at: start.Add(time.Duration(i) * d.Period), value: *v})
		}
	}
	if len(real) >= n {
		return d.decide(real[len(real)-n:], 0, false, m)
	}
	fill := n - len(real)
	switch d.TreatMissingData {
	case TreatBreaching:
		return d.decide(real, fill, true, m)
	case TreatNotBreaching:
		return d.decide(real, fill, false, m)
	}
	bad := d.breaching(real)
	switch {
	case bad >= m || bad < len(real):
		return d.decide(real, 0, false, m)
	case d.TreatMissingData == TreatIgnore:
		state = d.State
		if state == "" {
			state = InsufficientData
		}
		return state, fmt.Sprintf("Unchecked: %d of the last %d datapoints were missing and missing data is ignored: the state is kept.", len(values)-len(real), len(values))
	case len(real) > 0 && int(end.Sub(real[0].at)/d.Period) >= m:
		// The guide's premature-transition rule: every real datapoint
		// breaches, the oldest is at least M periods old, and only
		// breaches or gaps follow it.
		return d.decide(real, 0, false, 1)
	}
	return InsufficientData, fmt.Sprintf("Insufficient Data: %d datapoints were unknown.", len(values)-len(real))
}

// breaching counts the datapoints that breach the threshold.
func (d Definition) breaching(real []point) int {
	bad := 0
	for _, p := range real {
		if d.breaches(p.value) {
			bad++
		}
	}
	return bad
}

// decide applies M of N to the real datapoints and fill datapoints
// filled as breaching or not, and words it as CloudWatch does.
func (d Definition) decide(real []point, fill int, fillBreaching bool, m int) (state, reason string) {
	bad := d.breaching(real)
	if fillBreaching {
		bad += fill
	}
	total := len(real) + fill
	state = OK
	if bad >= m {
		state = Alarm
	}
	// CloudWatch lists the datapoints newest first, with their times.
	shown := make([]string, 0, len(real))
	for i := len(real) - 1; i >= 0; i-- {
		shown = append(shown, fmt.Sprintf("%s (%s)", number(real[i].value), real[i].at.UTC().Format("02/01/06 15:04:05")))
	}
	filled := ""
	if fill > 0 {
		treated := "NotBreaching"
		if fillBreaching {
			treated = "Breaching"
		}
		filled = fmt.Sprintf(" and %d missing datapoint(s) treated as [%s]", fill, treated)
	}
	op := opWord(d.ComparisonOperator)
	if state == Alarm {
		return state, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s]%s were %s the threshold (%s) (minimum %d datapoint(s) for OK -> ALARM transition).",
			bad, total, strings.Join(shown, ", "), filled, op, number(d.Threshold), m)
	}
	return state, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s]%s were not %s the threshold (%s) (minimum %d datapoint(s) for ALARM -> OK transition).",
		total-bad, total, strings.Join(shown, ", "), filled, op, number(d.Threshold), total-m+1)
}

// number prints a value as CloudWatch does in a reason: with a decimal
// point always.
func number(v float64) string {
	s := fmt.Sprintf("%g", v)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
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
