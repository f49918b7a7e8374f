package simulation

import (
	"math"
	"time"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
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
	pr.hist.Add(now, f.sessions())
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

// Forecasting is mediascale with its own pre-scaling, as the stack runs
// it: every hour the forecaster's plan (forecast.Plan) is remade from the
// pool's history of LoadCapacity (the nodes its load alone called for),
// and every decision's floor is capacity.ForecastFloor of that plan: the
// hour's expected peak, raised one lead time early (the cold launch plus
// the pool's shift bakes), never above max, never removing a node by
// itself, standing down while the load stays under half of it.
type Forecasting struct {
	*Mediascale
	hist   *forecast.History
	target float64
	lead   time.Duration
	plan   fleet.Forecast
}

func NewForecasting(p pool.Pool, m Model, target float64) *Forecasting {
	fc := &Forecasting{Mediascale: NewMediascale(p), hist: forecast.NewHistory(Epoch), target: target, lead: m.coldLead(p) + p.ShiftTime()}
	fc.label = "mediascale+forecast"
	fc.Mediascale.lead = fc.lead
	fc.Floor = fc.floor
	return fc
}

func (fc *Forecasting) Step(f *cluster, now time.Time) {
	fc.hist.Add(now, math.Ceil(f.sessions()/fc.target-1e-9))
	if hour := now.Truncate(time.Hour); !fc.plan.At.Equal(hour) {
		fc.plan = fleet.Forecast{At: hour, LeadSeconds: int(fc.lead.Seconds()), Hours: forecast.Plan(fc.hist, hour, forecast.Hours, fc.p.Capacity.Max)}
	}
	fc.Mediascale.Step(f, now)
}

// floor is the capacity the forecast asks for at now.
func (fc *Forecasting) floor(now time.Time) int {
	floor, _ := capacity.ForecastFloor(fc.p, fc.plan, fc.window, now)
	return floor
}
