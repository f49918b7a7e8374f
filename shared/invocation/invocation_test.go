package invocation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/telemetry"
)

type request struct {
	Pool string `json:"pool"`
}

func (r request) LogAttrs() []any { return []any{"pool", r.Pool} }

// lines splits captured JSON log lines by their msg.
func lines(t *testing.T, buf *bytes.Buffer) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		out[m["msg"].(string)] = m
	}
	return out
}

func TestHandlerLogsAndPublishesEachStep(t *testing.T) {
	cases := []struct {
		name      string
		input     string
		fail      error
		wantError string
		wantPool  string
		wantFail  float64
		wantSets  int
	}{
		{name: "a step that works publishes its duration with no error, per step and per pool", input: `{"pool":"live"}`, wantPool: "live", wantSets: 2},
		{name: "a step that fails counts one error and crosses as a named error", input: `{"pool":"live"}`, fail: events.Probe("no answer on 1935"), wantError: "ProbeFailed", wantPool: "live", wantFail: 1, wantSets: 2},
		{name: "an input that does not decode is InvalidInput and publishes per step only", input: `[1,2]`, wantError: "InvalidInput", wantFail: 1, wantSets: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
			now := func() time.Time { clock = clock.Add(250 * time.Millisecond); return clock }
			h := Handler("probe", telemetry.NewLogger(&buf, "probe"), now, func(context.Context, request) (string, error) {
				return "done", c.fail
			})
			_, err := h(context.Background(), json.RawMessage(c.input))
			if c.wantError == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if c.wantError != "" {
				var named events.Named
				if !errors.As(err, &named) || named.ErrorName() != c.wantError {
					t.Fatalf("error %v, want %s", err, c.wantError)
				}
			}
			got := lines(t, &buf)
			m, ok := got["metrics"]
			if !ok {
				t.Fatalf("no metrics line in %s", buf.String())
			}
			if m["Step"] != "probe" || m["StepDuration"] != 250.0 || m["StepErrors"] != c.wantFail {
				t.Errorf("metrics %v: want Step probe, StepDuration 250, StepErrors %v", m, c.wantFail)
			}
			if pool, _ := m["Pool"].(string); pool != c.wantPool {
				t.Errorf("Pool dimension %q, want %q", pool, c.wantPool)
			}
			sets := m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"].([]any)
			if len(sets) != c.wantSets {
				t.Errorf("dimension sets %v, want %d", sets, c.wantSets)
			}
		})
	}
}
