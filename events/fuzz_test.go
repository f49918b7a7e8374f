package events

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedEvents adds the sample events in testevents/ to a fuzz corpus.
func seedEvents(f *testing.F, glob string) {
	files, _ := filepath.Glob(filepath.Join("..", "testevents", glob))
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
}

func FuzzParseAlarmEvent(f *testing.F) {
	seedEvents(f, "trigger/alarm-*.json")
	seedEvents(f, "trigger/invalid/*.json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := ParseAlarmEvent(raw)
		if err != nil {
			if _, ok := err.(*InvalidInput); !ok {
				t.Fatalf("a refusal that is not InvalidInput: %T %v", err, err)
			}
			return
		}
		d := ev.Detail
		switch {
		case len(raw) > MaxEventBytes:
			t.Fatalf("accepted %d bytes", len(raw))
		case d.AlarmName == "" || utf8.RuneCountInString(d.AlarmName) > MaxAlarmNameLength:
			t.Fatalf("accepted alarm name %q", d.AlarmName)
		case d.State.Value != AlarmStateOK && d.State.Value != AlarmStateAlarm && d.State.Value != AlarmStateInsufficientData:
			t.Fatalf("accepted state %q", d.State.Value)
		case d.State.At.IsZero():
			t.Fatal("accepted an event without its state-change time")
		}
	})
}

func FuzzParseOperatorEvent(f *testing.F) {
	seedEvents(f, "trigger/operator-*.json")
	f.Add([]byte(`{"source":"mediascale.operator","detail-type":"Scale Request","detail":{"pool":"p","direction":"in","count":1,"operator":"o"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParseOperatorEvent(raw)
		if err != nil {
			if _, ok := err.(*InvalidInput); !ok {
				t.Fatalf("a refusal that is not InvalidInput: %T %v", err, err)
			}
			return
		}
		switch {
		case r.Pool == "" || utf8.RuneCountInString(r.Pool) > MaxPoolNameLength:
			t.Fatalf("accepted pool %q", r.Pool)
		case r.Direction != DirectionOut && r.Direction != DirectionIn:
			t.Fatalf("accepted direction %q", r.Direction)
		case r.Count < 1 || r.Count > MaxOperatorCount:
			t.Fatalf("accepted count %d", r.Count)
		case strings.TrimSpace(r.Operator) == "" || utf8.RuneCountInString(r.Operator) > MaxOperatorLength:
			t.Fatalf("accepted operator %q", r.Operator)
		case utf8.RuneCountInString(r.Reason) > MaxOperatorReason:
			t.Fatalf("accepted a reason of %d characters", utf8.RuneCountInString(r.Reason))
		}
	})
}

// FuzzFailureReason: whatever cause Step Functions hands over, the reason
// stored on the node is bounded text.
func FuzzFailureReason(f *testing.F) {
	f.Add("ProbeFailed", `{"errorMessage":"node n-1 failed 5 of 5 probes","errorType":"ProbeFailed"}`)
	f.Add("States.Timeout", "")
	f.Add("Internal", strings.Repeat("é", 600))
	f.Fuzz(func(t *testing.T, name, cause string) {
		r := Failure{Error: name, Cause: cause}.Reason()
		if !strings.HasPrefix(r, name+": ") {
			t.Fatalf("reason %q does not start with the error's name", r)
		}
		if len(r)-len(name) > 2+900+3 {
			t.Fatalf("reason of %d bytes", len(r))
		}
		if utf8.ValidString(name) && utf8.ValidString(cause) && !utf8.ValidString(r) {
			t.Fatalf("a valid cause became invalid text: %q", r)
		}
	})
}

func FuzzParsePressureRound(f *testing.F) {
	f.Add([]byte(`{"source":"mediascale.pressure","pool":"live-rtmp-use1","loop":"live-rtmp-use1-pressure-20261204T200000000Z","round":3}`))
	f.Add([]byte(`{"source":"mediascale.pressure","pool":"","loop":"x","round":-1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParsePressureRound(raw)
		if err != nil {
			if _, ok := err.(*InvalidInput); !ok {
				t.Fatalf("a refusal that is not InvalidInput: %T %v", err, err)
			}
			return
		}
		switch {
		case len(raw) > MaxEventBytes:
			t.Fatalf("accepted %d bytes", len(raw))
		case r.Source != PressureSource || strings.TrimSpace(r.Pool) == "" || strings.TrimSpace(r.Loop) == "" || r.Round < 0:
			t.Fatalf("accepted %+v", r)
		case utf8.RuneCountInString(r.Pool) > MaxPoolNameLength || utf8.RuneCountInString(r.Loop) > MaxExecutionNameLength:
			t.Fatalf("accepted names too long: %+v", r)
		}
	})
}
