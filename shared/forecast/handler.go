package forecast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// Days of history the forecast learns from: CloudWatch keeps five-minute
// points for 15 days, and a weekly pattern needs a week before the hour.
const Days = 14

// Hours is how far ahead a forecast reaches; the schedule makes a new one
// every hour, so a day ahead survives a day of failed runs.
const Hours = 24

// Metrics is what the forecaster reads from CloudWatch.
type Metrics interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// Store keeps each pool's forecast for the controller.
type Store interface {
	PutForecast(ctx context.Context, pool string, f fleet.Forecast) error
}

// Handler is the forecast function: on its hourly schedule it forecasts
// every pool from its own history.
type Handler struct {
	cw    Metrics
	store Store
	pools pool.File
	now   func() time.Time
	log   *slog.Logger
}

// NewHandler builds the forecast handler.
func NewHandler(cw Metrics, store Store, pools pool.File, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{cw: cw, store: store, pools: pools, now: now, log: log}
}

// Report is what one run forecast, per pool.
type Report struct {
	Pools map[string]fleet.Forecast `json:"pools"`
}

// LogAttrs summarises the run.
func (r Report) LogAttrs() []any {
	attrs := []any{}
	for name, f := range r.Pools {
		attrs = append(attrs, name, f.Reason)
	}
	return attrs
}

// Handle is the Lambda entry point. One pool's failure does not keep the
// others from their forecasts; the run reports every failure.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Report, error) {
	return invocation.Handler("forecast", h.log, h.now, func(ctx context.Context, _ json.RawMessage) (Report, error) {
		rep := Report{Pools: map[string]fleet.Forecast{}}
		var errs []error
		for _, p := range h.pools.Pools {
			f, err := h.forecast(ctx, p)
			if err == nil {
				err = h.store.PutForecast(ctx, p.Name, f)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("forecasting pool %s: %w", p.Name, err))
				continue
			}
			rep.Pools[p.Name] = f
		}
		return rep, errors.Join(errs...)
	})
}

func (h *Handler) forecast(ctx context.Context, p pool.Pool) (fleet.Forecast, error) {
	now := h.now().UTC()
	hour := now.Truncate(time.Hour)
	start := hour.Add(-(Days + 1) * 24 * time.Hour)
	// LoadCapacity is what the controller publishes on every decision:
	// the nodes the measured load alone calls for. Its hourly maximum is
	// the busiest minute of each hour.
	peaks, err := h.series(ctx, "LoadCapacity", []types.Dimension{dim("Pool", p.Name)}, "Maximum", start, hour, time.Hour)
	if err != nil {
		return fleet.Forecast{}, err
	}
	hist := NewHistory(start)
	for at, v := range peaks {
		hist.Add(at, v)
	}
	lead, source, err := h.lead(ctx, p, now)
	if err != nil {
		return fleet.Forecast{}, err
	}
	f := fleet.Forecast{At: now, LeadSeconds: int(lead.Seconds()), Hours: Plan(hist, hour, Hours, p.Capacity.Max)}
	f.Reason = fmt.Sprintf("%d hourly peaks of LoadCapacity over %d days; %d hours forecast; lead %s (%s)", len(peaks), Days, len(f.Hours), lead, source)
	return f, nil
}

// Plan is the forecast of the hours from from on: each hour's expected
// peak (History.Peak) in whole nodes, never above max. Hours without
// enough history are left out, so they raise no floor.
func Plan(hist *History, from time.Time, hours, max int) []fleet.ForecastHour {
	var out []fleet.ForecastHour
	for i := 0; i < hours; i++ {
		at := from.Add(time.Duration(i) * time.Hour)
		if load, ok := hist.Peak(at, Days); ok && hist.Hours() > 24 {
			out = append(out, fleet.ForecastHour{Hour: at, Nodes: min(int(math.Ceil(load-1e-9)), max)})
		}
	}
	return out
}

// lead is the pool's measured time from a scaling decision to its nodes at
// full weight: the 90th percentile of its successful scale-outs'
// ScaleSeconds over the history, else FallbackLead.
func (h *Handler) lead(ctx context.Context, p pool.Pool, now time.Time) (time.Duration, string, error) {
	span := Days * 24 * time.Hour
	vals, err := h.series(ctx, "ScaleSeconds",
		[]types.Dimension{dim("Pool", p.Name), dim("Direction", string(pool.ScaleOut)), dim("Status", "SUCCEEDED")},
		"p90", now.Add(-span), now, span)
	if err != nil {
		return 0, "", err
	}
	for _, v := range vals {
		if v > 0 {
			return time.Duration(v * float64(time.Second)).Round(time.Second), "p90 of the pool's scale-outs", nil
		}
	}
	return FallbackLead(p), "no scale-out measured yet: launch, deploy and every shift bake", nil
}

// FallbackLead is a pool's lead time before it has measured one
// (pool.Pool.FallbackLead).
func FallbackLead(p pool.Pool) time.Duration { return p.FallbackLead() }

// series reads one metric's statistic per period between start and end.
func (h *Handler) series(ctx context.Context, metric string, dims []types.Dimension, stat string, start, end time.Time, period time.Duration) (map[time.Time]float64, error) {
	in := &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end),
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("m"), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(telemetry.Namespace), MetricName: aws.String(metric), Dimensions: dims},
			Period: aws.Int32(int32(period.Seconds())), Stat: aws.String(stat),
		}}},
	}
	out := map[time.Time]float64{}
	pages := cloudwatch.NewGetMetricDataPaginator(h.cw, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", metric, err)
		}
		for _, r := range page.MetricDataResults {
			for i, v := range r.Values {
				if i < len(r.Timestamps) {
					out[r.Timestamps[i]] = v
				}
			}
		}
	}
	return out, nil
}

func dim(k, v string) types.Dimension {
	return types.Dimension{Name: aws.String(k), Value: aws.String(v)}
}
