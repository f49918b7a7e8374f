package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mediascale/mediascale/scripts/internal/rtmpclient"
	"github.com/mediascale/mediascale/scripts/testkit/loopback"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
)

// BenchmarkAgentWith100Sessions runs the real node agent binary, built for
// this machine, against a real nginx-rtmp holding 100 real sessions, with
// its reports going to moto, and measures what the agent costs: CPU time
// per report, its CPU share at the default 10 s interval, and its peak
// resident memory.
func BenchmarkAgentWith100Sessions(b *testing.B) {
	const sessions, reports = 100, 30
	nginx := medianode.StartForTest(b)
	srv := motoserver.Start(b)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(srv.Config(ctx))
	if err := motoserver.Table(ctx, db, fleet.TableDefinition("nodes")); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "mediascale-agent")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(repoRoot, "agent")).CombinedOutput(); err != nil {
		b.Fatalf("building the agent: %v\n%s", err, out)
	}
	playCtx, stop := context.WithCancel(ctx)
	defer stop()
	for range sessions {
		ready := make(chan struct{})
		go func() { _ = rtmpclient.Play(playCtx, nginx.MediaAddr(), "live", "show", ready) }()
		<-ready
	}
	ep := health.Endpoint{Host: nginx.Host, HealthPort: nginx.HealthPort}
	hc := &http.Client{Timeout: time.Second}
	for i := 0; i < 100; i++ {
		if st, err := health.ReadStat(ctx, hc, ep); err == nil && st.Sessions == sessions {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(bin, "--pool", "live", "--node", "n-1", "--table", "nodes", "--host", nginx.Host,
			"--health-port", strconv.Itoa(nginx.HealthPort), "--interval", "1s")
		cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+srv.URL(), "AWS_REGION="+motoserver.Region,
			"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(reports * time.Second)
		ticks, hwm := processCost(b, cmd.Process.Pid)
		loopback.StopGroup(cmd, 5*time.Second)
		cpu := time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100
		b.ReportMetric(float64(cpu.Milliseconds())/reports, "cpu-ms/report")
		b.ReportMetric(100*cpu.Seconds()/reports/10, "cpu%@10s")
		b.ReportMetric(float64(hwm)/1024, "peak-rss-MB")
	}
}

// processCost reads a process's user and system clock ticks and its peak
// resident memory in KiB.
func processCost(b *testing.B, pid int) (ticks, hwmKiB int64) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	s, _ := strconv.ParseInt(fields[12], 10, 64)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwmKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return u + s, hwmKiB
}
