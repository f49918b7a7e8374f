package traffic

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

func saturationPool() pool.Pool {
	return pool.Pool{Name: "live", Alarms: pool.Alarms{ScaleOut: pool.Thresholds{ConnectionsPerNode: 1500, CPUPercent: 70, BandwidthMbpsPerNode: 800}}}
}

func activeAt(id string, hb *fleet.Heartbeat) fleet.Node {
	return fleet.Node{Pool: "live", ID: id, State: fleet.Active, Heartbeat: hb}
}

func TestSaturated(t *testing.T) {
	now := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	beat := func(l fleet.Load) *fleet.Heartbeat {
		return &fleet.Heartbeat{At: now.Add(-5 * time.Second), Healthy: true, Load: l}
	}
	cases := []struct {
		name    string
		nodes   []fleet.Node
		refused float64
		want    bool
		reason  string
	}{
		{"every ACTIVE node at or above a scale-out threshold is saturated",
			[]fleet.Node{activeAt("n-1", beat(fleet.Load{Connections: 1500})), activeAt("n-2", beat(fleet.Load{CPUPercent: 75}))}, 0, true, "all 2 ACTIVE node(s) of pool live at or above"},
		{"one ACTIVE node below every threshold leaves room",
			[]fleet.Node{activeAt("n-1", beat(fleet.Load{Connections: 1900})), activeAt("n-2", beat(fleet.Load{Connections: 1400}))}, 0, false, ""},
		{"a node still shifting in is not judged",
			[]fleet.Node{activeAt("n-1", beat(fleet.Load{Connections: 1600})), {Pool: "live", ID: "n-2", State: fleet.Shifting, Heartbeat: beat(fleet.Load{})}}, 0, true, "all 1 ACTIVE"},
		{"an ACTIVE node without a fresh heartbeat cannot be called full",
			[]fleet.Node{activeAt("n-1", beat(fleet.Load{Connections: 1600})), activeAt("n-2", &fleet.Heartbeat{At: now.Add(-time.Hour), Healthy: true, Load: fleet.Load{Connections: 1600}})}, 0, false, ""},
		{"an unhealthy ACTIVE node cannot be called full",
			[]fleet.Node{activeAt("n-1", &fleet.Heartbeat{At: now, Load: fleet.Load{Connections: 1600}})}, 0, false, ""},
		{"a pool without ACTIVE nodes is not saturated", nil, 0, false, ""},
		{"the dispatcher refusing sessions is saturation whatever the heartbeats say",
			[]fleet.Node{activeAt("n-1", beat(fleet.Load{Connections: 100}))}, 3, true, "the entry dispatcher refused 3 session(s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Saturated(saturationPool(), tc.nodes, tc.refused, now)
			if got != tc.want || !strings.Contains(why, tc.reason) {
				t.Fatalf("Saturated = %v, %q; want %v with %q", got, why, tc.want, tc.reason)
			}
		})
	}
}

// On moto: a saturated pool's new node takes its full weight at the first
// step and bakes for the pressure bake; the guard then judges it and it
// is ACTIVE. The same node in a pool with room walks the pool's steps.
func TestASaturatedPoolsNodeTakesItsFullShareAtOnceOnMoto(t *testing.T) {
	r53, cw, p := motoTraffic(t)
	ctx := context.Background()
	p.Alarms = saturationPool().Alarms
	p.Traffic.Steps = []pool.Step{{Percent: 10}, {Percent: 50}, {Percent: 100}}
	pools := pool.File{Environment: "dev", Pools: []pool.Pool{p}}
	rec := NewRecords(r53)
	t.Setenv("MEDIASCALE_MAX_WAIT_SECONDS", "600")
	shift := func(loads ...float64) (*fleettest.Memory, []Result) {
		t.Helper()
		nodes := []fleet.Node{{Pool: "live", ID: "n-new", Execution: "exec-1", State: fleet.Shifting, InstanceID: "i-1", Endpoint: "127.0.0.1"}}
		for i, l := range loads {
			nodes = append(nodes, activeAt("n-old-"+string(rune('a'+i)), &fleet.Heartbeat{At: time.Now(), Healthy: true, Load: fleet.Load{Connections: l}}))
		}
		store := fleettest.NewMemory(nodes...)
		h := NewHandler(func(string) (Weights, error) { return rec, nil }, NewGuard(cw, time.Now), store, pools, time.Now, telemetry.NewLogger(io.Discard, "shift"))
		var out []Result
		for step := 0; len(out) < 10; {
			raw, _ := json.Marshal(Request{Task: events.NodeTask{Pool: "live", Node: "n-new", Execution: "exec-1"}, Step: step})
			res, err := h.Handle()(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res)
			if res.Done {
				break
			}
			step = res.Step
		}
		return store, out
	}
	store, res := shift(1600, 1550)
	if len(res) != 2 || res[0].Percent != 100 || res[0].BakeSeconds != 15 || !strings.Contains(res[0].Saturated, "all 2 ACTIVE node(s)") || !res[1].Done {
		t.Fatalf("saturated pool: %+v; want 100 %% at once, a 15 s bake, then ACTIVE", res)
	}
	if n := store.Node("live", "n-new"); n.State != fleet.Active || n.Weight != FullWeight {
		t.Fatalf("node after the shift = %s weight %d", n.State, n.Weight)
	}
	_, res = shift(1600, 900)
	var percents []int
	for _, r := range res[:len(res)-1] {
		percents = append(percents, r.Percent)
		if r.Saturated != "" {
			t.Fatalf("a pool with room called saturated: %q", r.Saturated)
		}
	}
	if len(percents) != 3 || percents[0] != 10 || percents[1] != 50 || percents[2] != 100 {
		t.Fatalf("a pool with room shifted through %v, want its steps 10, 50, 100", percents)
	}
	// The dispatcher's refusals, as it publishes them, saturate the pool
	// though its nodes' heartbeats show room.
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(Namespace), MetricData: []cwtypes.MetricDatum{{
		MetricName: aws.String(telemetry.SessionsRefused), Value: aws.Float64(4), Timestamp: aws.Time(time.Now()), StorageResolution: aws.Int32(1),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live")}},
	}}}); err != nil {
		t.Fatal(err)
	}
	if _, res = shift(900); res[0].Percent != 100 || !strings.Contains(res[0].Saturated, "refused 4 session(s)") {
		t.Fatalf("with refusals: %+v", res[0])
	}
}
