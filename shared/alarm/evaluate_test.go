package alarm

import (
	"strings"
	"testing"
	"time"
)

func v(f float64) *float64 { return &f }

// points reads a row of the user guide's tables, oldest first: 0 a
// datapoint within the threshold (10), X one breaching it, - none.
func points(row string) []*float64 {
	var out []*float64
	for _, c := range strings.Fields(row) {
		switch c {
		case "0":
			out = append(out, v(4))
		case "X":
			out = append(out, v(40))
		default:
			out = append(out, nil)
		}
	}
	return out
}

var end = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// guideRow is one row of "How alarm state is evaluated when data is
// missing": the alarm's state for each treatment, "keep" for "Retain
// current state".
type guideRow struct {
	points                                string
	missing, ignore, breaching, notBreach string
}

// The guide's two tables, Period 5 minutes, Evaluation Periods 3, an
// evaluation range of 5: Datapoints to Alarm 3, then 2. The last row of
// each is from the guide's earlier edition, whose fifth row was "- - - - X"
// (the current one has "- - X - -" and "- - - X -" there, for its
// premature-transition rule).
var (
	threeOfThree = []guideRow{
		{"0 - X - X", OK, OK, OK, OK},
		{"0 - - - -", OK, OK, OK, OK},
		{"- - - - -", InsufficientData, "keep", Alarm, OK},
		{"0 X X - X", Alarm, Alarm, Alarm, Alarm},
		{"- - X - -", Alarm, "keep", Alarm, OK},
		{"- - - - X", InsufficientData, "keep", Alarm, OK},
	}
	twoOfThree = []guideRow{
		{"0 - X - X", Alarm, Alarm, Alarm, Alarm},
		{"0 0 X 0 X", Alarm, Alarm, Alarm, Alarm},
		{"0 - X - -", OK, OK, Alarm, OK},
		{"- - - - 0", OK, OK, Alarm, OK},
		{"- - - X -", Alarm, "keep", Alarm, OK},
		{"- - - - X", InsufficientData, "keep", Alarm, OK},
	}
)

func TestEveryRowOfTheUserGuidesTables(t *testing.T) {
	for _, table := range []struct {
		name string
		m    int
		rows []guideRow
	}{{"3 of 3", 3, threeOfThree}, {"2 of 3", 2, twoOfThree}} {
		for _, row := range table.rows {
			for treatment, want := range map[string]string{TreatMissing: row.missing, TreatIgnore: row.ignore, TreatBreaching: row.breaching, TreatNotBreaching: row.notBreach} {
				for _, prior := range []string{OK, Alarm} {
					name := table.name + ", " + row.points + ", " + treatment + ", from " + prior
					t.Run(name, func(t *testing.T) {
						d := Definition{Period: 5 * time.Minute, EvaluationPeriods: 3, DatapointsToAlarm: table.m, Threshold: 10,
							ComparisonOperator: "GreaterThanThreshold", TreatMissingData: treatment, State: prior}
						expect := want
						if want == "keep" {
							expect = prior
						}
						if got, reason := Evaluate(d, end, points(row.points)); got != expect {
							t.Fatalf("state %s (%s), the guide says %s", got, reason, want)
						}
					})
				}
			}
		}
	}
}

func TestEvaluateBeyondTheGuidesTables(t *testing.T) {
	high := Definition{Period: time.Minute, EvaluationPeriods: 3, Threshold: 10, ComparisonOperator: "GreaterThanThreshold", TreatMissingData: TreatMissing, State: OK}
	with := func(treat string, m int) Definition {
		d := high
		d.TreatMissingData, d.DatapointsToAlarm = treat, m
		return d
	}
	cases := []struct {
		name   string
		def    Definition
		row    string
		state  string
		reason string
	}{
		{"a full range is judged on its last three datapoints alone", high, "X X 0 0 0", OK, "3 out of the last 3 datapoints"},
		{"real datapoints from farther back stand in for missing recent ones", with(TreatNotBreaching, 0), "X X - X -", Alarm, "3 out of the last 3 datapoints"},
		{"missing periods are filled only as often as needed", with(TreatBreaching, 0), "- - 0 X -", OK, "and 1 missing datapoint(s) treated as [Breaching]"},
		{"a breach whose later periods are all missing alarms once it is M periods old", with(TreatMissing, 0), "X - - - -", Alarm, ""},
		{"a breach too recent to be M periods old does not alarm yet", with(TreatMissing, 0), "- - - X -", InsufficientData, "Insufficient Data: 4 datapoints were unknown."},
		{"a good datapoint among missing ones is OK under missing", with(TreatMissing, 2), "- X - 0 -", OK, ""},
		{"ignore keeps ALARM when only a breach too few for M is there", Definition{Period: time.Minute, EvaluationPeriods: 3, Threshold: 10,
			ComparisonOperator: "GreaterThanThreshold", TreatMissingData: TreatIgnore, State: Alarm}, "- - - - X", Alarm, "the state is kept"},
		{"a less-than alarm breaches below its threshold", Definition{Period: time.Minute, EvaluationPeriods: 3, Threshold: 10,
			ComparisonOperator: "LessThanThreshold", TreatMissingData: TreatMissing, State: Alarm}, "0 0 0 0 0", Alarm, "were less than the threshold (10.0)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, reason := Evaluate(tc.def, end, points(tc.row))
			if st != tc.state || !strings.Contains(reason, tc.reason) {
				t.Fatalf("got %s %q, want %s with %q", st, reason, tc.state, tc.reason)
			}
		})
	}
}

func TestTheReasonIsCloudWatchs(t *testing.T) {
	d := Definition{Period: time.Minute, EvaluationPeriods: 3, Threshold: 100, ComparisonOperator: "GreaterThanThreshold", TreatMissingData: TreatMissing}
	_, reason := Evaluate(d, end, []*float64{v(1), v(2), v(150), v(120), v(101)})
	want := "Threshold Crossed: 3 out of the last 3 datapoints [101.0 (21/11/26 09:59:00), 120.0 (21/11/26 09:58:00), 150.0 (21/11/26 09:57:00)] " +
		"were greater than the threshold (100.0) (minimum 3 datapoint(s) for OK -> ALARM transition)."
	if reason != want {
		t.Fatalf("reason\n%s\nwant\n%s", reason, want)
	}
}

func TestTheRangeReachesTwoPeriodsPastTheEvaluationPeriods(t *testing.T) {
	d := Definition{Period: 10 * time.Second, EvaluationPeriods: 3}
	start, end := d.Range(time.Date(2026, 11, 21, 10, 0, 27, 0, time.UTC))
	if d.RangePeriods() != 5 || !start.Equal(time.Date(2026, 11, 21, 9, 59, 30, 0, time.UTC)) || !end.Equal(time.Date(2026, 11, 21, 10, 0, 20, 0, time.UTC)) {
		t.Fatalf("range %s .. %s (%d periods)", start, end, d.RangePeriods())
	}
	if EvaluateEvery(10*time.Second) != 10*time.Second || EvaluateEvery(5*time.Minute) != time.Minute {
		t.Fatal("evaluation frequency")
	}
}
