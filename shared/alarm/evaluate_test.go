package alarm

import (
	"strings"
	"testing"
	"time"
)

func v(f float64) *float64 { return &f }

func TestEvaluate(t *testing.T) {
	high := Definition{Period: time.Minute, EvaluationPeriods: 3, Threshold: 100, ComparisonOperator: "GreaterThanThreshold", TreatMissingData: "notBreaching", State: OK}
	twoOfThree := high
	twoOfThree.DatapointsToAlarm = 2
	low := Definition{Period: 5 * time.Minute, EvaluationPeriods: 3, Threshold: 10, ComparisonOperator: "LessThanThreshold", TreatMissingData: "missing", State: OK}
	ignoring := low
	ignoring.TreatMissingData = "ignore"
	ignoring.State = Alarm
	breaching := high
	breaching.TreatMissingData = "breaching"
	cases := []struct {
		name   string
		def    Definition
		values []*float64
		state  string
		reason string
	}{
		{"every period above the threshold alarms", high, []*float64{v(150), v(120), v(101)}, Alarm, "3 out of the last 3 datapoints [150, 120, 101] were greater than the threshold (100)"},
		{"one good period keeps a 3 of 3 alarm OK", high, []*float64{v(150), v(90), v(101)}, OK, ""},
		{"2 of 3 datapoints to alarm alarm on two", twoOfThree, []*float64{v(150), v(90), v(101)}, Alarm, "2 out of the last 3"},
		{"missing counts as good when not breaching", high, []*float64{v(150), nil, v(101)}, OK, "[150, missing, 101]"},
		{"missing counts as bad when breaching", breaching, []*float64{v(150), nil, v(101)}, Alarm, ""},
		{"a scale-in alarm with no data at all is INSUFFICIENT_DATA", low, []*float64{nil, nil, nil}, InsufficientData, "3 datapoints were unknown"},
		{"missing data is left out: low values alarm only when enough are there", low, []*float64{v(1), v(2), v(3)}, Alarm, "less than the threshold (10)"},
		{"missing data is left out: too few to decide keeps the state", low, []*float64{nil, v(2), v(3)}, OK, "state holds"},
		{"one good value among missing ones is OK", low, []*float64{nil, nil, v(30)}, OK, ""},
		{"ignore keeps the state when everything is missing", ignoring, []*float64{nil, nil, nil}, Alarm, "state holds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, reason := Evaluate(tc.def, tc.values)
			if st != tc.state || !strings.Contains(reason, tc.reason) {
				t.Fatalf("got %s %q, want %s with %q", st, reason, tc.state, tc.reason)
			}
		})
	}
}

func TestTheRangeIsTheLastCompletePeriods(t *testing.T) {
	d := Definition{Period: 10 * time.Second, EvaluationPeriods: 3}
	start, end := d.Range(time.Date(2026, 11, 21, 10, 0, 27, 0, time.UTC))
	if !start.Equal(time.Date(2026, 11, 21, 9, 59, 50, 0, time.UTC)) || !end.Equal(time.Date(2026, 11, 21, 10, 0, 20, 0, time.UTC)) {
		t.Fatalf("range %s .. %s", start, end)
	}
	if EvaluateEvery(10*time.Second) != 10*time.Second || EvaluateEvery(5*time.Minute) != time.Minute {
		t.Fatal("evaluation frequency")
	}
}
