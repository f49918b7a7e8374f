package capacity

import (
	"fmt"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// StandDown is how long the load must call for under half of the current
// hour's forecast before the controller stops trusting it: a show that was
// cancelled, a holiday. The reactive controller stays the backstop.
const StandDown = 15 * time.Minute

// ForecastFloor turns a pool's forecast into the controller's floor at
// now: the nodes the current hour and the hour one lead time ahead are
// expected to call for, the higher of the two, never above max. A
// forecast only ever raises the floor; it never scales a pool in. The
// current hour's part stands down when every sample of the last StandDown
// in the window called for under half of it.
func ForecastFloor(p pool.Pool, f fleet.Forecast, window []fleet.Sample, now time.Time) (floor int, reason string) {
	current, hasCurrent := f.NodesAt(now)
	ahead, _ := f.NodesAt(now.Add(f.Lead()))
	if hasCurrent && current > 0 && wrong(p, window, now, current) {
		reason = fmt.Sprintf("the forecast of %d nodes for this hour stood down: the load has called for under half of it for %s", current, StandDown)
		if now.Add(f.Lead()).Truncate(time.Hour).Equal(now.Truncate(time.Hour)) {
			ahead = 0
		}
		current = 0
	}
	floor = min(max(current, ahead), p.Capacity.Max)
	if floor > 0 && reason == "" {
		reason = fmt.Sprintf("forecast: %d nodes this hour, %d one lead time (%s) ahead", current, ahead, f.Lead())
	}
	return floor, reason
}

// wrong reports whether the window covers the last StandDown and every
// sample in it called for under half of expected nodes.
func wrong(p pool.Pool, window []fleet.Sample, now time.Time, expected int) bool {
	since := now.Add(-StandDown)
	if len(window) == 0 || window[0].At.After(since) {
		return false
	}
	targets := Targets(p)
	for _, s := range window {
		if !s.At.Before(since) && 2*desiredFor(s.Load, targets) >= expected {
			return false
		}
	}
	return true
}
