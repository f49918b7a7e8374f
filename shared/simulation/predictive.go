package simulation

import (
	"math"
	"time"

	"github.com/mediascale/mediascale/shared/forecast"
	"github.com/mediascale/mediascale/shared/pool"
)

// Predictive is EC2 Auto Scaling predictive scaling beside target
// tracking (EC2 Auto Scaling user guide, "Predictive scaling"): with at
// least 24 hours of history it forecasts each hour's load from the last
// 14 days, refreshes the forecast every 6 hours for the next 48, and sets
// the hour's capacity SchedulingBufferTime (300 s) before it starts; it
// never scales in from the forecast, which only raises the floor target
// tracking works above. AWS does not publish its model; the stand-in is
// the mean of the same hour over the days it has (forecast.DailyMean).
type Predictive struct {
	tt      *TargetTracking
	hist    *forecast.History
	target  float64
	plan    map[time.Time]int
	refresh time.Time
}

// SchedulingBuffer is how early predictive scaling launches for an hour.
const SchedulingBuffer = 300 * time.Second

func NewPredictive(p pool.Pool, target float64) *Predictive {
	return &Predictive{tt: NewTargetTracking(p, target), hist: forecast.NewHistory(Epoch), target: target, plan: map[time.Time]int{}}
}

func (pr *Predictive) Name() string { return "predictive+tt" }
func (pr *Predictive) Shifts() bool { return false }
func (pr *Predictive) Step(f *cluster, now time.Time) {
	pr.hist.Add(now, f.served())
	if !now.Before(pr.refresh) {
		pr.refresh = now.Add(6 * time.Hour)
		if pr.hist.Hours() > 24 {
			for h := 0; h < 48; h++ {
				hour := now.Truncate(time.Hour).Add(time.Duration(h) * time.Hour)
				if load, ok := pr.hist.DailyMean(hour, 14); ok {
					pr.plan[hour] = int(math.Ceil(load/pr.target - 1e-9))
				}
			}
		}
	}
	pr.tt.floor = max(pr.plan[now.Truncate(time.Hour)], pr.plan[now.Add(SchedulingBuffer).Truncate(time.Hour)])
	pr.tt.Step(f, now)
}

// Forecasting is mediascale with its own pre-scaling: the controller's
// floor is raised ahead of each hour to what the pool's history says the
// hour's peak needs (forecast.Peak), one lead time early (the cold launch
// plus the pool's shift steps), never above max; the floor never removes
// a node by itself, and it stands down for the rest of an hour whose load
// stays below half of the forecast for 15 minutes: the forecast was wrong
// and the reactive controller stays the backstop.
type Forecasting struct {
	*Mediascale
	hist   *forecast.History
	target float64
	lead   time.Duration
	// low counts how long the current hour's load has been below half
	// its forecast; wrong is the hour the forecast stood down for.
	low   time.Duration
	wrong time.Time
}

func NewForecasting(p pool.Pool, m Model, target float64) *Forecasting {
	lead := m.coldLead(p)
	for _, s := range p.ShiftSteps() {
		lead += s.Bake.D()
	}
	fc := &Forecasting{Mediascale: NewMediascale(p), hist: forecast.NewHistory(Epoch), target: target, lead: lead}
	fc.label = "mediascale+forecast"
	fc.Floor = fc.floor
	return fc
}

func (fc *Forecasting) Step(f *cluster, now time.Time) {
	load := f.served()
	fc.hist.Add(now, load)
	if want, ok := fc.hist.Peak(now, 14); ok && load < want/2 {
		fc.low += f.m.Step.D()
	} else {
		fc.low = 0
	}
	if fc.low >= 15*time.Minute {
		fc.wrong = now.Truncate(time.Hour)
	}
	fc.Mediascale.Step(f, now)
}

// floor is the capacity the forecast asks for at now.
func (fc *Forecasting) floor(now time.Time) int {
	best := 0
	for _, at := range []time.Time{now, now.Add(fc.lead)} {
		hour := at.Truncate(time.Hour)
		if hour.Equal(fc.wrong) {
			continue
		}
		if load, ok := fc.hist.Peak(hour, 14); ok && fc.hist.Hours() > 24 {
			best = max(best, int(math.Ceil(load/fc.target-1e-9)))
		}
	}
	return min(best, fc.p.Capacity.Max)
}

// served is the sessions the pool serves now, what its agents report.
func (f *cluster) served() float64 {
	return f.perWeight()*f.weight() + f.held()
}
