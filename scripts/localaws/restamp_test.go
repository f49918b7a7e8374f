package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
)

func TestASampleAlarmIsSentAsAStateChangeOfNow(t *testing.T) {
	now := time.Date(2027, 3, 1, 8, 30, 0, 0, time.UTC)
	sample := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(repoRoot, "testevents/trigger", name))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	cases := []struct {
		name, file, at string
		want           string // the state-change time sent; "" for the file unchanged
	}{
		{"now restamps a sample", "alarm-connections-high.json", "now", "2027-03-01T08:30:00.000+0000"},
		{"now plus a duration restamps later", "alarm-connections-low.json", "now+20m", "2027-03-01T08:50:00.000+0000"},
		{"an RFC 3339 time is used as given", "alarm-connections-high.json", "2027-03-01T07:00:00.5Z", "2027-03-01T07:00:00.500+0000"},
		{"keep sends the file's own time", "alarm-connections-high.json", "keep", ""},
		{"a refused sample stays as it is", "invalid/missing-alarm-name.json", "now", ""},
		{"an operator request is not an alarm", "operator-scale-out-dry-run.json", "now", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := sample(tc.file)
			at, keep, err := stampAt(tc.at, now)
			if err != nil {
				t.Fatal(err)
			}
			out := raw
			if !keep {
				if out, err = restamp(raw, at); err != nil {
					t.Fatal(err)
				}
			}
			if tc.want == "" {
				if !bytes.Equal(out, raw) {
					t.Fatalf("changed:\n%s", out)
				}
				return
			}
			ev, err := events.ParseAlarmEvent(out)
			if err != nil || ev.Detail.State.Timestamp != tc.want || !strings.Contains(string(out), `"time":"`+at.Format(time.RFC3339)+`"`) {
				t.Fatalf("restamped to %q (%v):\n%s", ev.Detail.State.Timestamp, err, out)
			}
		})
	}
	if _, _, err := stampAt("yesterday", now); err == nil {
		t.Fatal("an --at that is no time was accepted")
	}
}
