// Package forecast predicts a pool's load an hour at a time from its own
// history, as CloudWatch keeps it (five-minute points for fifteen days),
// so the controller can raise a pool's floor ahead of a peak that comes
// back every evening or every weekend. The simulator uses the same code
// for EC2 predictive scaling's stand-in and for mediascale's own
// pre-scaling.
package forecast

import (
	"math"
	"time"
)

// History is a load curve summed into whole hours: each hour's mean load
// and its peak, from Start.
type History struct {
	Start time.Time
	mean  []float64
	peak  []float64
	count []int
}

// NewHistory starts an empty history at the hour of start.
func NewHistory(start time.Time) *History {
	return &History{Start: start.Truncate(time.Hour)}
}

// Add records one observation of the load.
func (h *History) Add(at time.Time, load float64) {
	i := int(at.Sub(h.Start) / time.Hour)
	if i < 0 {
		return
	}
	for len(h.mean) <= i {
		h.mean, h.peak, h.count = append(h.mean, 0), append(h.peak, 0), append(h.count, 0)
	}
	h.count[i]++
	h.mean[i] += (load - h.mean[i]) / float64(h.count[i])
	h.peak[i] = math.Max(h.peak[i], load)
}

// Hours is how many hours the history covers.
func (h *History) Hours() int { return len(h.mean) }

func (h *History) at(i int) (mean, peak float64, ok bool) {
	if i < 0 || i >= len(h.mean) || h.count[i] == 0 {
		return 0, 0, false
	}
	return h.mean[i], h.peak[i], true
}

// DailyMean is EC2 predictive scaling's stand-in: the mean load of the
// same hour of day over the last days days before hour (AWS does not
// publish its model; it says the forecast learns daily and weekly
// patterns from up to 14 days). ok is false with under a day of history.
func (h *History) DailyMean(hour time.Time, days int) (load float64, ok bool) {
	i := int(hour.Truncate(time.Hour).Sub(h.Start) / time.Hour)
	sum, n := 0.0, 0
	for d := 1; d <= days; d++ {
		if m, _, found := h.at(i - 24*d); found {
			sum += m
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// Peak is mediascale's own forecast for an hour: the higher of the same
// hour's peak a week earlier and the mean of that hour's peaks over the
// last days days, so a weekend peak is expected on the weekend and a
// daily one every day. Peaks, not means, because the pool must hold the
// busiest minute of the hour, not its average.
func (h *History) Peak(hour time.Time, days int) (load float64, ok bool) {
	i := int(hour.Truncate(time.Hour).Sub(h.Start) / time.Hour)
	if _, p, found := h.at(i - 24*7); found {
		load, ok = p, true
	}
	sum, n := 0.0, 0
	for d := 1; d <= days; d++ {
		if _, p, found := h.at(i - 24*d); found {
			sum += p
			n++
		}
	}
	if n > 0 {
		load, ok = math.Max(load, sum/float64(n)), true
	}
	return load, ok
}
