package forecast

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// fakeMetrics answers GetMetricData from hourly series by metric name and
// records what it was asked.
type fakeMetrics struct {
	series map[string]map[time.Time]float64
	asked  []string
}

func (f *fakeMetrics) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	q := in.MetricDataQueries[0]
	name := aws.ToString(q.MetricStat.Metric.MetricName)
	f.asked = append(f.asked, name+" "+aws.ToString(q.MetricStat.Stat))
	res := types.MetricDataResult{Id: q.Id}
	for at, v := range f.series[name] {
		if !at.Before(*in.StartTime) && at.Before(*in.EndTime) {
			res.Timestamps, res.Values = append(res.Timestamps, at), append(res.Values, v)
		}
	}
	return &cloudwatch.GetMetricDataOutput{MetricDataResults: []types.MetricDataResult{res}}, nil
}

type recorded struct{ forecasts map[string]fleet.Forecast }

func (r *recorded) PutForecast(_ context.Context, p string, f fleet.Forecast) error {
	r.forecasts[p] = f
	return nil
}

// evenings is a pool's LoadCapacity: 2 nodes all day, 9 at 20:00, for
// days days before until.
func evenings(until time.Time, days int) map[time.Time]float64 {
	out := map[time.Time]float64{}
	for at := until.AddDate(0, 0, -days); at.Before(until); at = at.Add(time.Hour) {
		out[at] = 2
		if at.Hour() == 20 {
			out[at] = 9
		}
	}
	return out
}

func livePool() pool.Pool {
	return pool.Pool{Name: "live", Capacity: pool.Capacity{Min: 1, Max: 40},
		Traffic: pool.Traffic{Bake: pool.Duration(time.Minute), Steps: []pool.Step{{Percent: 50}, {Percent: 100}}}}
}

func run(t *testing.T, cw Metrics, store Store, now time.Time, p pool.Pool) Report {
	t.Helper()
	h := NewHandler(cw, store, pool.File{Environment: "dev", Pools: []pool.Pool{p}}, func() time.Time { return now }, telemetry.NewLogger(io.Discard, "forecast"))
	rep, err := h.Handle()(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestTheForecasterPlansTheEveningPeakWithTheMeasuredLead(t *testing.T) {
	now := time.Date(2026, 11, 21, 18, 10, 0, 0, time.UTC)
	cw := &fakeMetrics{series: map[string]map[time.Time]float64{
		"LoadCapacity": evenings(now.Truncate(time.Hour), 15),
		"ScaleSeconds": {now.Add(-24 * time.Hour): 420},
	}}
	store := &recorded{forecasts: map[string]fleet.Forecast{}}
	run(t, cw, store, now, livePool())
	f, ok := store.forecasts["live"]
	if !ok || len(f.Hours) != Hours || f.Lead() != 7*time.Minute {
		t.Fatalf("forecast %+v", f)
	}
	if n, _ := f.NodesAt(time.Date(2026, 11, 21, 20, 30, 0, 0, time.UTC)); n != 9 {
		t.Fatalf("the evening peak is forecast at %d nodes, want 9", n)
	}
	if n, _ := f.NodesAt(now); n != 2 {
		t.Fatalf("this hour is forecast at %d nodes, want 2", n)
	}
	if want := []string{"LoadCapacity Maximum", "ScaleSeconds p90"}; len(cw.asked) != 2 || cw.asked[0] != want[0] || cw.asked[1] != want[1] {
		t.Fatalf("asked %v, want %v", cw.asked, want)
	}
}

func TestWithoutMeasuresTheForecasterFallsBackAndWithoutADayOfHistoryItForecastsNothing(t *testing.T) {
	now := time.Date(2026, 11, 21, 18, 10, 0, 0, time.UTC)
	store := &recorded{forecasts: map[string]fleet.Forecast{}}
	run(t, &fakeMetrics{series: map[string]map[time.Time]float64{"LoadCapacity": evenings(now.Truncate(time.Hour), 3)}}, store, now, livePool())
	if f := store.forecasts["live"]; f.Lead() != FallbackLead(livePool()) || f.Lead() != 11*time.Minute || len(f.Hours) == 0 {
		t.Fatalf("three days of history and no scale-out measured: %+v", f)
	}
	run(t, &fakeMetrics{series: map[string]map[time.Time]float64{"LoadCapacity": evenings(now.Truncate(time.Hour), 0)}}, store, now, livePool())
	if f := store.forecasts["live"]; len(f.Hours) != 0 {
		t.Fatalf("no history: %+v", f)
	}
}

func TestTheForecasterOnMoto(t *testing.T) {
	ctx := context.Background()
	cfg, store := fleettest.OnMoto(t, "nodes")
	cw := cloudwatch.NewFromConfig(cfg)
	// Three days of the controller's LoadCapacity, an evening peak each.
	now := time.Now().UTC()
	var data []types.MetricDatum
	for at, v := range evenings(now.Truncate(time.Hour), 3) {
		data = append(data, types.MetricDatum{MetricName: aws.String("LoadCapacity"), Value: aws.Float64(v), Timestamp: aws.Time(at.Add(5 * time.Minute)),
			Unit: types.StandardUnitCount, Dimensions: []types.Dimension{{Name: aws.String("Pool"), Value: aws.String("live")}}})
	}
	for start := 0; start < len(data); start += 500 {
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(telemetry.Namespace), MetricData: data[start:min(start+500, len(data))]}); err != nil {
			t.Fatal(err)
		}
	}
	run(t, cw, store, now, livePool())
	f, ok, err := store.Forecast(ctx, "live")
	if err != nil || !ok || len(f.Hours) == 0 {
		t.Fatalf("forecast read back: %+v, %v, %v", f, ok, err)
	}
	evening := now.Truncate(24 * time.Hour).Add(20 * time.Hour)
	if evening.Before(now.Truncate(time.Hour)) {
		evening = evening.Add(24 * time.Hour)
	}
	if n, ok := f.NodesAt(evening); !ok || n != 9 {
		t.Fatalf("the evening at %s is forecast at %d nodes (%v), want 9: %+v", evening, n, ok, f)
	}
}
