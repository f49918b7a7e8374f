package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

func TestStepWeight(t *testing.T) {
	cases := []struct {
		name    string
		percent int
		want    int
	}{
		{"ten percent is a tenth of a full share", 10, 10},
		{"a full step is the full weight", 100, FullWeight},
		{"a tiny step never rounds down to zero", 0, 0},
		{"one percent keeps the node in with weight 1", 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := StepWeight(tc.percent); got != tc.want {
				t.Fatalf("StepWeight(%d) = %d, want %d", tc.percent, got, tc.want)
			}
		})
	}
}

func f(v float64) *float64 { return &v }

func TestEvaluate(t *testing.T) {
	g := pool.Guard{MaxCPUPercent: 80, MaxConnectionsPerNode: 1000, MaxErrorRatePercent: 2, Alarms: []string{"edge-5xx"}}
	ok := map[string]string{"edge-5xx": "OK"}
	cases := []struct {
		name   string
		r      Reading
		ok     bool
		reason string
	}{
		{"values within limits and an OK alarm pass", Reading{NodeCPU: f(40), NodeConnections: f(300), PoolErrorRate: f(0.5), Alarms: ok}, true, "alarm edge-5xx OK"},
		{"a node above its CPU limit trips", Reading{NodeCPU: f(92), NodeConnections: f(300), PoolErrorRate: f(0.5), Alarms: ok}, false, "node CPU % 92.0 above the limit 80.0"},
		{"too many connections on the node trips", Reading{NodeCPU: f(40), NodeConnections: f(1500), PoolErrorRate: f(0.5), Alarms: ok}, false, "node connections 1500.0 above the limit 1000.0"},
		{"a pool error rate above the limit trips", Reading{NodeCPU: f(40), NodeConnections: f(1), PoolErrorRate: f(7), Alarms: ok}, false, "pool error rate % 7.0 above the limit 2.0"},
		{"an alarm that does not exist trips, never read as OK", Reading{Alarms: map[string]string{}}, false, "alarm edge-5xx does not exist"},
		{"an alarm in ALARM trips", Reading{Alarms: map[string]string{"edge-5xx": "ALARM"}}, false, "alarm edge-5xx is ALARM"},
		{"an alarm without data trips", Reading{Alarms: map[string]string{"edge-5xx": "INSUFFICIENT_DATA"}}, false, "is INSUFFICIENT_DATA"},
		{"missing datapoints are named but do not trip", Reading{Alarms: ok}, true, "node CPU %: no datapoints, not judged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(g, tc.r)
			if v.OK != tc.ok || !strings.Contains(strings.Join(v.Reasons, "\n"), tc.reason) {
				t.Fatalf("verdict = %+v, want ok=%v with %q", v, tc.ok, tc.reason)
			}
		})
	}
}

// motoTraffic starts moto with a hosted zone and returns the clients and a
// pool routed through the zone.
func motoTraffic(t *testing.T) (*route53.Client, *cloudwatch.Client, pool.Pool) {
	t.Helper()
	srv := motoserver.Start(t)
	ctx := context.Background()
	cfg := srv.Config(ctx)
	r53 := route53.NewFromConfig(cfg)
	zone, err := r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("dev.mediascale.internal"), CallerReference: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	p := pool.Pool{
		Name: "live",
		Traffic: pool.Traffic{
			Mode:    pool.TrafficRoute53,
			Route53: &pool.Route53{HostedZoneID: strings.TrimPrefix(aws.ToString(zone.HostedZone.Id), "/hostedzone/"), RecordName: "live.dev.mediascale.internal", TTL: 30},
			Bake:    pool.Duration(time.Minute),
			Guard:   pool.Guard{MaxCPUPercent: 80, MaxConnectionsPerNode: 1000, MaxErrorRatePercent: 2},
		},
	}
	return r53, cloudwatch.NewFromConfig(cfg), p
}

func TestRecordsOnMoto(t *testing.T) {
	r53, _, p := motoTraffic(t)
	ctx := context.Background()
	rec := NewRecords(r53)
	if _, _, found, err := rec.Weight(ctx, p, "n-1"); err != nil || found {
		t.Fatalf("a node without a record: found=%v err=%v", found, err)
	}
	for _, w := range []int{10, 30} {
		if err := rec.SetWeight(ctx, p, "n-1", "127.0.0.1", w); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.SetWeight(ctx, p, "n-2", "127.0.0.2", 100); err != nil {
		t.Fatal(err)
	}
	w, ip, found, err := rec.Weight(ctx, p, "n-1")
	if err != nil || !found || w != 30 || ip != "127.0.0.1" {
		t.Fatalf("n-1 record = weight %d ip %q found %v err %v", w, ip, found, err)
	}
	if err := rec.Remove(ctx, p, "n-1", ""); err != nil {
		t.Fatal(err)
	}
	if err := rec.Remove(ctx, p, "n-1", ""); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if _, _, found, _ := rec.Weight(ctx, p, "n-1"); found {
		t.Fatal("the removed record is still there")
	}
	if w, _, found, _ := rec.Weight(ctx, p, "n-2"); !found || w != 100 {
		t.Fatal("removing one node's record touched another's")
	}
}

func TestShiftWalksEveryStepThenActivates(t *testing.T) {
	r53, cw, p := motoTraffic(t)
	ctx := context.Background()
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Shifting, InstanceID: "i-1", Endpoint: "127.0.0.1"})
	pools := pool.File{Environment: "dev", Pools: []pool.Pool{p}}
	rec := NewRecords(r53)
	h := NewHandler(func(string) (Weights, error) { return rec, nil }, NewGuard(cw, time.Now), store, pools, time.Now, telemetry.NewLogger(io.Discard, "shift"))
	t.Setenv("MEDIASCALE_MAX_WAIT_SECONDS", "2")
	step := 0
	var weights []string
	for i := 0; i < 10; i++ {
		raw, _ := json.Marshal(Request{Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"}, Step: step})
		res, err := h.Handle()(ctx, raw)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if res.Done {
			break
		}
		if res.BakeSeconds != 2 {
			t.Fatalf("bake %d s, want the 2 s cap", res.BakeSeconds)
		}
		w, _, _, _ := rec.Weight(ctx, p, "n-1")
		weights = append(weights, fmt.Sprint(w))
		step = res.Step
	}
	if got := strings.Join(weights, ","); got != "10,30,50,80,100" {
		t.Fatalf("record weights over the shift = %s", got)
	}
	if n := store.Node("live", "n-1"); n.State != fleet.Active || n.Weight != FullWeight {
		t.Fatalf("node after shift = %s weight %d", n.State, n.Weight)
	}
}

func TestGuardTripsOnAMissingOrFiringAlarm(t *testing.T) {
	r53, cw, p := motoTraffic(t)
	ctx := context.Background()
	p.Traffic.Guard.Alarms = []string{"edge-5xx"}
	pools := pool.File{Environment: "dev", Pools: []pool.Pool{p}}
	rec := NewRecords(r53)
	run := func(store *fleettest.Memory) error {
		h := NewHandler(func(string) (Weights, error) { return rec, nil }, NewGuard(cw, time.Now), store, pools, time.Now, telemetry.NewLogger(io.Discard, "shift"))
		raw, _ := json.Marshal(Request{Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"}, Step: 1})
		_, err := h.Handle()(ctx, raw)
		return err
	}
	shifting := func() *fleettest.Memory {
		return fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Shifting, InstanceID: "i-1", Endpoint: "127.0.0.1"})
	}
	var gt *events.GuardTripped
	if err := run(shifting()); !errors.As(err, &gt) || !strings.Contains(err.Error(), "alarm edge-5xx does not exist") {
		t.Fatalf("missing alarm: %v", err)
	}
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("edge-5xx"), Namespace: aws.String(Namespace), MetricName: aws.String("ErrorRatePercent"),
		Statistic: cwtypes.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(2),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("edge-5xx"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("test")}); err != nil {
		t.Fatal(err)
	}
	if err := run(shifting()); !errors.As(err, &gt) || !strings.Contains(err.Error(), "alarm edge-5xx is ALARM") {
		t.Fatalf("firing alarm: %v", err)
	}
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("edge-5xx"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("test")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(Namespace), MetricData: []cwtypes.MetricDatum{{
		MetricName: aws.String("Connections"), Value: aws.Float64(1400), Timestamp: aws.Time(time.Now()),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live")}, {Name: aws.String("Node"), Value: aws.String("n-1")}},
	}}}); err != nil {
		t.Fatal(err)
	}
	if err := run(shifting()); !errors.As(err, &gt) || !strings.Contains(err.Error(), "node connections 1400.0 above the limit 1000.0") {
		t.Fatalf("busy node: %v", err)
	}
}

func TestConnectionsOnMoto(t *testing.T) {
	_, cw, _ := motoTraffic(t)
	ctx := context.Background()
	put := func(node string, v float64) {
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(Namespace), MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String("Connections"), Value: aws.Float64(v), Timestamp: aws.Time(time.Now()),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live")}, {Name: aws.String("Node"), Value: aws.String(node)}},
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	put("n-1", 12)
	put("n-2", 0)
	got, err := NewGuard(cw, time.Now).Connections(ctx, "live", []string{"n-1", "n-2", "n-3"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["n-1"] != 12 || got["n-2"] != 0 {
		t.Fatalf("connections = %v, want n-1=12 n-2=0 and no reading for n-3", got)
	}
}

func TestPressure(t *testing.T) {
	p := pool.Pool{Alarms: pool.Alarms{ScaleOut: pool.Thresholds{ConnectionsPerNode: 1500, CPUPercent: 70, BandwidthMbpsPerNode: 800}}}
	cases := []struct {
		name  string
		load  map[pool.Metric]float64
		under bool
		why   string
	}{
		{"a pool without datapoints is not under pressure", nil, false, ""},
		{"a pool at its thresholds is not under pressure", map[pool.Metric]float64{pool.MetricConnections: 1500, pool.MetricCPU: 70}, false, ""},
		{"one metric above its threshold is pressure", map[pool.Metric]float64{pool.MetricConnections: 900, pool.MetricCPU: 71},
			true, "pool CPU % per node 71 above the scale-out threshold 70"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			under, why := Pressure(p, Reading{PoolLoad: tc.load})
			if under != tc.under || why != tc.why {
				t.Fatalf("Pressure = %v %q, want %v %q", under, why, tc.under, tc.why)
			}
		})
	}
}

func TestAPoolUnderPressureBakesEachStepForThePressureBake(t *testing.T) {
	r53, cw, p := motoTraffic(t)
	ctx := context.Background()
	p.Alarms.ScaleOut = pool.Thresholds{ConnectionsPerNode: 1500, CPUPercent: 70, BandwidthMbpsPerNode: 800}
	rec := NewRecords(r53)
	first := func() Result {
		t.Helper()
		pools := pool.File{Environment: "dev", Pools: []pool.Pool{p}}
		store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Shifting, InstanceID: "i-1", Endpoint: "127.0.0.1"})
		h := NewHandler(func(string) (Weights, error) { return rec, nil }, NewGuard(cw, time.Now), store, pools, time.Now, telemetry.NewLogger(io.Discard, "shift"))
		raw, _ := json.Marshal(Request{Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"}, Step: 0})
		res, err := h.Handle()(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := first(); res.BakeSeconds != 60 || res.Pressure != "" {
		t.Fatalf("a quiet pool's first step: bake %d s, pressure %q; want the step's 60 s", res.BakeSeconds, res.Pressure)
	}
	// The ACTIVE nodes' aggregate, as agents publish it with the Pool
	// dimension alone.
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(Namespace), MetricData: []cwtypes.MetricDatum{{
		MetricName: aws.String("Connections"), Value: aws.Float64(1900), Timestamp: aws.Time(time.Now()),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live")}},
	}}}); err != nil {
		t.Fatal(err)
	}
	res := first()
	if res.BakeSeconds != 15 || !strings.Contains(res.Pressure, "connections per node 1900 above the scale-out threshold 1500") {
		t.Fatalf("an overloaded pool's first step: bake %d s, pressure %q; want the 15 s pressure bake", res.BakeSeconds, res.Pressure)
	}
	p.Traffic.PressureBake = pool.Duration(30 * time.Second)
	if res := first(); res.BakeSeconds != 30 {
		t.Fatalf("with traffic.pressureBake 30s the step bakes %d s", res.BakeSeconds)
	}
}

func TestReweighingIsConditionalOnTheRecordAsReadOnMoto(t *testing.T) {
	r53, _, p := motoTraffic(t)
	ctx := context.Background()
	rec := NewRecords(r53)
	for i, id := range []string{"n-1", "n-2", "n-3"} {
		if err := rec.SetWeight(ctx, p, id, fmt.Sprintf("127.0.0.%d", i+1), FullWeight); err != nil {
			t.Fatal(err)
		}
	}
	read, err := rec.Current(ctx, p)
	if err != nil || len(read) != 3 || read["n-2"].Weight != FullWeight {
		t.Fatalf("Current = %+v, %v", read, err)
	}
	if changed, err := rec.Reweigh(ctx, p, read["n-1"], 75); !changed || err != nil {
		t.Fatalf("reweighing n-1: %v, %v", changed, err)
	}
	// A drain takes n-2's record away, a shift step moves n-3's, after
	// the read: reweighing either from the stale read changes nothing.
	if err := rec.Remove(ctx, p, "n-2", ""); err != nil {
		t.Fatal(err)
	}
	if err := rec.SetWeight(ctx, p, "n-3", "127.0.0.3", 50); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n-2", "n-3"} {
		if changed, err := rec.Reweigh(ctx, p, read[id], 125); changed || err != nil {
			t.Fatalf("reweighing %s from a stale read: %v, %v", id, changed, err)
		}
	}
	now, _ := rec.Current(ctx, p)
	if len(now) != 2 || now["n-1"].Weight != 75 || now["n-3"].Weight != 50 {
		t.Fatalf("records after the stale writes: %+v", now)
	}
}
