package capacity

import (
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
)

func TestForecastFloor(t *testing.T) {
	p := livePool(t) // max 6, connections target 1200 a node
	at := func(h int) time.Time { return time.Date(2026, 11, 21, h, 0, 0, 0, time.UTC) }
	// The evening's forecast: 2 nodes at 19:00, 5 at 20:00, 40 at 21:00,
	// planned with a 20-minute lead.
	fc := fleet.Forecast{LeadSeconds: 1200, Hours: []fleet.ForecastHour{{Hour: at(19), Nodes: 2}, {Hour: at(20), Nodes: 5}, {Hour: at(21), Nodes: 40}}}
	cases := []struct {
		name   string
		now    time.Time
		window []fleet.Sample
		floor  int
		reason string
	}{
		{"early in an hour the floor is that hour's forecast", at(19).Add(10 * time.Minute), nil, 2, "forecast: 2 nodes this hour, 2 one lead time"},
		{"one lead time before the peak hour the floor rises to it", at(19).Add(45 * time.Minute), nil, 5, "5 one lead time (20m0s) ahead"},
		{"a floor above max stops at max", at(20).Add(45 * time.Minute), nil, 6, "40 one lead time"},
		{"an hour the forecast does not cover gives no floor", at(23), nil, 0, ""},
		{"load under half the forecast for the stand-down time stands the hour down",
			at(20).Add(30 * time.Minute), history20(at(20).Add(30*time.Minute), 20*time.Minute, 2000), 0, "stood down"},
		{"load at half the forecast keeps it",
			at(20).Add(30 * time.Minute), history20(at(20).Add(30*time.Minute), 20*time.Minute, 3000), 5, "forecast: 5 nodes"},
		{"a window shorter than the stand-down time keeps it",
			at(20).Add(30 * time.Minute), history20(at(20).Add(30*time.Minute), 5*time.Minute, 100), 5, "forecast: 5 nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			floor, reason := ForecastFloor(p, fc, tc.window, tc.now)
			if floor != tc.floor || !strings.Contains(reason, tc.reason) {
				t.Fatalf("floor %d (%q), want %d saying %q", floor, reason, tc.floor, tc.reason)
			}
		})
	}
}

// history20 is a window of one sample a minute over the span before now,
// each with the given total connections.
func history20(now time.Time, span time.Duration, conns float64) []fleet.Sample {
	var out []fleet.Sample
	for at := now.Add(-span); at.Before(now); at = at.Add(time.Minute) {
		out = append(out, fleet.Sample{At: at, Load: fleet.Load{Connections: conns}})
	}
	return out
}
