package agent

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/telemetry"
)

func writeProcStat(t *testing.T, path string, user, system, idle, iowait uint64) {
	t.Helper()
	line := []byte("cpu  " + itoa(user) + " 0 " + itoa(system) + " " + itoa(idle) + " " + itoa(iowait) + " 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n")
	if err := os.WriteFile(path, line, 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func TestCPUIsTheBusyShareOfTheInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	writeProcStat(t, path, 100, 100, 700, 100)
	before, err := readCPU(path)
	if err != nil {
		t.Fatal(err)
	}
	// 300 more ticks busy, 100 idle and 100 waiting on I/O: 60 % busy.
	writeProcStat(t, path, 300, 200, 800, 200)
	after, err := readCPU(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.busySince(before); got != 60 {
		t.Fatalf("busy %.1f %%, want 60", got)
	}
	if got := before.busySince(after); got != 0 {
		t.Fatalf("counters that went back gave %.1f %%", got)
	}
	if err := os.WriteFile(path, []byte("intr 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readCPU(path); err == nil {
		t.Fatal("a file without a cpu line was read")
	}
}

// statOf reads one statistic of a metric over the last ten minutes, with
// exactly the given dimensions, as CloudWatch matches them (GetMetricData;
// moto's GetMetricStatistics also matches any superset of dimensions). It
// returns nil when there is no datapoint.
func statOf(t *testing.T, cw *cloudwatch.Client, name string, stat types.Statistic, dims ...types.Dimension) *float64 {
	t.Helper()
	out, err := cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-10 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("m"), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(telemetry.Namespace), MetricName: aws.String(name), Dimensions: dims},
			Period: aws.Int32(660), Stat: aws.String(string(stat)),
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) == 0 || len(out.MetricDataResults[0].Values) == 0 {
		return nil
	}
	return &out.MetricDataResults[0].Values[0]
}

func metricValue(t *testing.T, cw *cloudwatch.Client, name string, dims ...types.Dimension) *float64 {
	t.Helper()
	return statOf(t, cw, name, types.StatisticMaximum, dims...)
}

// metricCount counts a metric's datapoints for the pool as a whole.
func metricCount(t *testing.T, cw *cloudwatch.Client, name string) int {
	t.Helper()
	if v := statOf(t, cw, name, types.StatisticSampleCount, dim("Pool", "live")); v != nil {
		return int(*v)
	}
	return 0
}

func dim(k, v string) types.Dimension {
	return types.Dimension{Name: aws.String(k), Value: aws.String(v)}
}

func TestTheAgentReportsARealMediaServersLoad(t *testing.T) {
	nginx := medianode.StartForTest(t)
	ctx := context.Background()
	cfg, store := fleettest.OnMoto(t, "nodes")
	n, err := store.CreateNode(ctx, fleet.Node{Pool: "live", ID: "n-1", Execution: "e"})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []fleet.State{fleet.Provisioning, fleet.Deploying, fleet.Probing, fleet.Shifting} {
		if n, err = store.Transition(ctx, "live", "n-1", n.State, n.Version, to, fleet.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	cw := cloudwatch.NewFromConfig(cfg)
	ep := health.Endpoint{Host: nginx.Host, HealthPort: nginx.HealthPort, MediaPort: nginx.MediaPort}
	a, err := New(Config{Pool: "live", Node: "n-1", Media: ep, Interval: time.Second, HighResolution: true}, cw, store, time.Now, telemetry.NewLogger(io.Discard, "agent"))
	if err != nil {
		t.Fatal(err)
	}

	// Two real RTMP sessions: publishers of two streams.
	nginx.Publish(t, "show-a", 30)
	nginx.Publish(t, "show-b", 30)
	hc := &http.Client{Timeout: time.Second}
	for i := 0; i < 100; i++ {
		if st, err := health.ReadStat(ctx, hc, ep); err == nil && st.Sessions == 2 && st.BytesIn > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// While the node shifts in, its load is its own, not yet the pool's.
	a.Report(ctx)
	if v := metricValue(t, cw, "Connections", dim("Pool", "live"), dim("Node", "n-1")); v == nil || *v != 2 {
		t.Fatalf("a SHIFTING node's own Connections: %v", v)
	}
	if c := metricCount(t, cw, "Connections"); c != 0 {
		t.Fatalf("a SHIFTING node published %d Connections datapoints for its pool", c)
	}
	if n, err = store.Transition(ctx, "live", "n-1", fleet.Shifting, n.Version, fleet.Active, fleet.Change{}); err != nil {
		t.Fatal(err)
	}
	a.Report(ctx)
	time.Sleep(1500 * time.Millisecond)
	hb := a.Report(ctx)
	if !hb.Healthy || hb.Load.Connections != 2 || hb.Load.BandwidthMbps <= 0 || hb.Load.CPUPercent < 0 || hb.Load.CPUPercent > 100 {
		t.Fatalf("heartbeat with two live sessions: %+v", hb)
	}
	stored, err := store.GetNode(ctx, "live", "n-1")
	if err != nil || stored.Heartbeat == nil || stored.Heartbeat.Load != hb.Load || !stored.Heartbeat.Healthy || stored.Version != n.Version {
		t.Fatalf("record after the heartbeat: %+v (%+v), %v", stored, stored.Heartbeat, err)
	}
	for _, dims := range [][]types.Dimension{{dim("Pool", "live")}, {dim("Pool", "live"), dim("Node", "n-1")}} {
		if v := metricValue(t, cw, "Connections", dims...); v == nil || *v != 2 {
			t.Fatalf("Connections with %d dimensions: %v", len(dims), v)
		}
		if v := metricValue(t, cw, "BandwidthMbps", dims...); v == nil || *v <= 0 {
			t.Fatalf("BandwidthMbps with %d dimensions: %v", len(dims), v)
		}
	}

	// CloudWatch throttles the agent: its datapoints for this interval are
	// lost, but the heartbeat still carries the load to the controller,
	// whose every-minute decision reads the node table, not the alarms.
	a.cw = throttledMetrics{}
	time.Sleep(10 * time.Millisecond)
	hb = a.Report(ctx)
	if stored, err := store.GetNode(ctx, "live", "n-1"); err != nil || stored.Heartbeat == nil || !stored.Heartbeat.At.Equal(hb.At) || stored.Heartbeat.Load.Connections != 2 {
		t.Fatalf("the heartbeat while CloudWatch throttles: %+v, %v", stored.Heartbeat, err)
	}
	a.cw = cw

	// The media server stops answering: the node is unhealthy, and no
	// zero is published as its load.
	nginx.Stop()
	before := metricCount(t, cw, "Connections")
	hb = a.Report(ctx)
	if hb.Healthy || hb.Reason == "" || hb.Load.Connections != 0 {
		t.Fatalf("heartbeat with the media server down: %+v", hb)
	}
	if stored, _ := store.GetNode(ctx, "live", "n-1"); stored.Heartbeat.Healthy {
		t.Fatal("the record still says healthy")
	}
	if after := metricCount(t, cw, "Connections"); after != before {
		t.Fatalf("Connections datapoints went from %d to %d while the server was down", before, after)
	}
	if v := statOf(t, cw, "NodeHealthy", types.StatisticMinimum, dim("Pool", "live"), dim("Node", "n-1")); v == nil || *v != 0 {
		t.Fatalf("NodeHealthy minimum %v, want 0 after the server stopped", v)
	}

	// A node that left service takes no heartbeat from its agent.
	cur, _ := store.GetNode(ctx, "live", "n-1")
	if _, err := store.Transition(ctx, "live", "n-1", cur.State, cur.Version, fleet.RollingBack, fleet.Change{}); err != nil {
		t.Fatal(err)
	}
	a.Report(ctx)
	if gone, _ := store.GetNode(ctx, "live", "n-1"); gone.State != fleet.RollingBack {
		t.Fatalf("the agent moved a node that left service: %s", gone.State)
	}
}

// throttledMetrics answers PutMetricData as CloudWatch does when an
// account's request rate is over its quota.
type throttledMetrics struct{}

func (throttledMetrics) PutMetricData(context.Context, *cloudwatch.PutMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
}

func TestCPUOfAProcessGroupCountsOnlyItsProcesses(t *testing.T) {
	proc := t.TempDir()
	writeProcStat(t, filepath.Join(proc, "stat"), 1000, 0, 9000, 0)
	write := func(pid, pgrp string, utime, stime int) {
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
		line := pid + " (nginx: worker (x)) S 1 " + pgrp + " 1 0 -1 0 0 0 0 0 " + strconv.Itoa(utime) + " " + strconv.Itoa(stime) + " 0 0 20 0 1 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("100", "100", 30, 10)
	write("101", "100", 50, 10)
	write("200", "200", 900, 100)
	if got := groupTicks(proc, 100); got != 100 {
		t.Fatalf("group 100 used %d ticks, want 100", got)
	}
	pidfile := filepath.Join(proc, "nginx.pid")
	if err := os.WriteFile(pidfile, []byte("100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{ProcStat: filepath.Join(proc, "stat"), CPUPidFile: pidfile}}
	before, err := a.readCPU()
	if err != nil {
		t.Fatal(err)
	}
	// The machine ran 1000 more ticks; the group 50 of them: 5 %.
	writeProcStat(t, filepath.Join(proc, "stat"), 1500, 0, 9500, 0)
	write("101", "100", 90, 20)
	after, _ := a.readCPU()
	if got := after.busySince(before); got != 5 {
		t.Fatalf("group CPU %.1f %%, want 5", got)
	}
}
