package forecast

import (
	"testing"
	"time"
)

var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// fill records a load every five minutes for days days, as CloudWatch
// keeps it, from the function of the time.
func fill(days int, load func(time.Time) float64) *History {
	h := NewHistory(monday)
	for at := monday; at.Before(monday.AddDate(0, 0, days)); at = at.Add(5 * time.Minute) {
		h.Add(at, load(at))
	}
	return h
}

func TestForecasts(t *testing.T) {
	evening := func(at time.Time) float64 {
		if at.Hour() == 20 {
			return 1000
		}
		return 100
	}
	weekend := func(at time.Time) float64 {
		if at.Weekday() == time.Saturday && at.Hour() == 20 {
			return 5000
		}
		return evening(at)
	}
	cases := []struct {
		name      string
		h         *History
		hour      time.Time
		peak      bool
		want      float64
		forecasts bool
	}{
		{"under a day of history there is no forecast", fill(0, evening), monday.Add(20 * time.Hour), false, 0, false},
		{"the daily mean expects the evening peak every evening", fill(3, evening), monday.AddDate(0, 0, 3).Add(20 * time.Hour), false, 1000, true},
		{"the daily mean expects the quiet morning", fill(3, evening), monday.AddDate(0, 0, 3).Add(9 * time.Hour), false, 100, true},
		{"the daily mean dilutes a weekend peak over the fortnight", fill(14, weekend), monday.AddDate(0, 0, 14).Add(20 * time.Hour), false, (12*1000 + 2*5000) / 14.0, true},
		{"the peak forecast expects last Saturday's peak this Saturday", fill(14, weekend), monday.AddDate(0, 0, 19).Add(20 * time.Hour), true, 5000, true},
		{"the peak forecast expects a weekday's peak on a weekday", fill(14, weekend), monday.AddDate(0, 0, 14).Add(20 * time.Hour), true, 1000 + 2*4000/14.0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.h.DailyMean(tc.hour, 14)
			if tc.peak {
				got, ok = tc.h.Peak(tc.hour, 14)
			}
			if ok != tc.forecasts || (ok && (got < tc.want-0.01 || got > tc.want+0.01)) {
				t.Fatalf("forecast %.2f (%t), want %.2f (%t)", got, ok, tc.want, tc.forecasts)
			}
		})
	}
}
