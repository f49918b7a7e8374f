// Package agent is the node agent that runs on every media node: each
// interval it reads the media server's own statistics and the machine's
// CPU, publishes the node's load as CloudWatch metrics (which the scaling
// alarms watch), and writes a heartbeat with that load on the node's record
// (which the controller and the dispatcher read).
package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// CloudWatch is the part of the CloudWatch client the agent uses.
type CloudWatch interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Heartbeats is the part of the node table the agent writes.
type Heartbeats interface {
	Heartbeat(ctx context.Context, pool, id string, hb fleet.Heartbeat) (fleet.State, error)
}

// Config says which node the agent speaks for and how.
type Config struct {
	Pool, Node string
	// Media is where the node's media server serves its statistics.
	Media    health.Endpoint
	Interval time.Duration
	// HighResolution stores the metrics at one-second resolution, for
	// alarms with periods under a minute.
	HighResolution bool
	// ProcStat is the kernel's CPU counters file (/proc/stat).
	ProcStat string
	// CPUPidFile, when set, names the media server's pid file: CPU is then
	// the share of the machine that server's process group used, not the
	// whole machine's. A node that runs only its media server (every
	// instance) leaves it empty; the local cloud, where many nodes share
	// one machine, sets it.
	CPUPidFile string
}

// Agent reports one node's load.
type Agent struct {
	cfg   Config
	http  *http.Client
	cw    CloudWatch
	store Heartbeats
	now   func() time.Time
	log   *slog.Logger
	// active is the node's last known service: ACTIVE or not.
	active bool
	// The previous counters, so each report covers one interval.
	cpu   cpuTimes
	bytes int64
	at    time.Time
}

// New returns an agent. It reads the CPU counters once, so that the first
// report already covers an interval.
func New(cfg Config, cw CloudWatch, store Heartbeats, now func() time.Time, log *slog.Logger) (*Agent, error) {
	if cfg.Pool == "" || cfg.Node == "" {
		return nil, errors.New("agent: pool and node are required")
	}
	if cfg.Interval <= 0 {
		return nil, errors.New("agent: the interval must be positive")
	}
	if cfg.ProcStat == "" {
		cfg.ProcStat = "/proc/stat"
	}
	a := &Agent{cfg: cfg, http: &http.Client{Timeout: min(cfg.Interval/2, 5*time.Second)}, cw: cw, store: store, now: now, log: log}
	cpu, err := a.readCPU()
	if err != nil {
		return nil, err
	}
	a.cpu = cpu
	return a, nil
}

// Run reports every interval until ctx ends.
func (a *Agent) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.Report(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Report reads, writes one heartbeat, publishes, and returns the
// heartbeat. A failure to write or to publish is logged, never fatal: the
// next interval tries again.
//
// The heartbeat's answer says whether the node is ACTIVE. Only then does
// its load count in the pool's aggregate (the Pool dimension the scaling
// alarms average): a node still on its way in, on its way into the warm
// pool, or draining would pull the pool's average towards its own, as EC2
// Auto Scaling leaves instances in warmup out of a group's aggregated
// metrics. When the table cannot be reached the last answer stands.
func (a *Agent) Report(ctx context.Context) fleet.Heartbeat {
	hb := a.Read(ctx)
	log := a.log.With("pool", a.cfg.Pool, "node", a.cfg.Node, "healthy", hb.Healthy,
		"connections", hb.Load.Connections, "cpuPercent", hb.Load.CPUPercent, "bandwidthMbps", hb.Load.BandwidthMbps)
	switch state, err := a.store.Heartbeat(ctx, a.cfg.Pool, a.cfg.Node, hb); {
	case errors.Is(err, fleet.ErrNotReporting):
		// Before the probe and after the node left service the record
		// takes no heartbeat; that is not the agent's failure.
		a.active = false
		log.DebugContext(ctx, "node not in service: heartbeat not written")
	case err != nil:
		log.WarnContext(ctx, "heartbeat not written", "error", err.Error())
	default:
		a.active = state == fleet.Active
		log.DebugContext(ctx, "reported", "state", state, "reason", hb.Reason)
	}
	if err := a.publish(ctx, hb, a.active); err != nil {
		log.WarnContext(ctx, "metrics not published", "error", err.Error())
	}
	return hb
}

// Read takes one reading. A media server that does not answer makes the
// node unhealthy with the reason, never a node with zero load.
func (a *Agent) Read(ctx context.Context) fleet.Heartbeat {
	now := a.now().UTC()
	hb := fleet.Heartbeat{At: now, Healthy: true}
	if cpu, err := a.readCPU(); err != nil {
		a.log.WarnContext(ctx, "reading CPU", "error", err.Error())
	} else {
		hb.Load.CPUPercent = round1(cpu.busySince(a.cpu))
		a.cpu = cpu
	}
	st, err := health.ReadStat(ctx, a.http, a.cfg.Media)
	if err != nil {
		hb.Healthy, hb.Reason = false, fmt.Sprintf("media server did not answer: %v", err)
		hb.Load = fleet.Load{CPUPercent: hb.Load.CPUPercent}
		return hb
	}
	hb.Load.Connections = float64(st.Sessions)
	bytes := st.BytesIn + st.BytesOut
	// The rate over the interval from the server's byte counters; the
	// server's own recent rate when there is no earlier reading (or the
	// server restarted and its counters went back).
	if secs := now.Sub(a.at).Seconds(); !a.at.IsZero() && secs > 0 && bytes >= a.bytes {
		hb.Load.BandwidthMbps = round1(float64(bytes-a.bytes) * 8 / secs / 1e6)
	} else {
		hb.Load.BandwidthMbps = round1(float64(st.BitsPerSecond) / 1e6)
	}
	a.bytes, a.at = bytes, now
	return hb
}

// publish writes the node's load in the Mediascale namespace with Pool and
// Node, which the guard and the scale-in plan read, and, for an ACTIVE
// node, again with the Pool dimension, which the scaling alarms average.
// An unhealthy node publishes only that it is unhealthy: a missing
// datapoint is honest, a zero would tell the alarms the node is idle.
func (a *Agent) publish(ctx context.Context, hb fleet.Heartbeat, active bool) error {
	var res *int32
	if a.cfg.HighResolution {
		res = aws.Int32(1)
	}
	pool := []types.Dimension{{Name: aws.String("Pool"), Value: aws.String(a.cfg.Pool)}}
	node := append(pool[:1:1], types.Dimension{Name: aws.String("Node"), Value: aws.String(a.cfg.Node)})
	datum := func(name string, v float64, unit types.StandardUnit, dims []types.Dimension) types.MetricDatum {
		return types.MetricDatum{MetricName: aws.String(name), Value: aws.Float64(v), Unit: unit, Dimensions: dims,
			Timestamp: aws.Time(hb.At), StorageResolution: res}
	}
	healthy := 0.0
	if hb.Healthy {
		healthy = 1
	}
	data := []types.MetricDatum{datum("NodeHealthy", healthy, types.StandardUnitCount, node)}
	if hb.Healthy {
		for _, m := range []struct {
			name string
			v    float64
			unit types.StandardUnit
		}{
			{"Connections", hb.Load.Connections, types.StandardUnitCount},
			{"CPUPercent", hb.Load.CPUPercent, types.StandardUnitPercent},
			{"BandwidthMbps", hb.Load.BandwidthMbps, types.StandardUnitMegabitsSecond},
		} {
			data = append(data, datum(m.name, m.v, m.unit, node))
			if active {
				data = append(data, datum(m.name, m.v, m.unit, pool))
			}
		}
	}
	_, err := a.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(telemetry.Namespace), MetricData: data})
	return err
}

// cpuTimes are the kernel's cumulative CPU counters, in clock ticks.
type cpuTimes struct{ busy, total uint64 }

// busySince is the share of time the CPUs were busy between two readings,
// in percent of the whole machine.
func (c cpuTimes) busySince(prev cpuTimes) float64 {
	if c.total <= prev.total {
		return 0
	}
	return 100 * float64(c.busy-prev.busy) / float64(c.total-prev.total)
}

// readCPU reads the machine's counters and, with a pid file, counts only
// the media server's process group as busy.
func (a *Agent) readCPU() (cpuTimes, error) {
	c, err := readCPU(a.cfg.ProcStat)
	if err != nil || a.cfg.CPUPidFile == "" {
		return c, err
	}
	raw, err := os.ReadFile(a.cfg.CPUPidFile)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("reading the media server's pid: %w", err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return cpuTimes{}, fmt.Errorf("the media server's pid file holds %q", raw)
	}
	c.busy = groupTicks(filepath.Dir(a.cfg.ProcStat), pgid)
	return c, nil
}

// groupTicks sums the user and system clock ticks of every process in a
// process group, from /proc/<pid>/stat: after the command name in
// parentheses come state, ppid, pgrp (the 3rd field), ..., utime and stime
// (the 12th and 13th).
func groupTicks(proc string, pgid int) uint64 {
	stats, _ := filepath.Glob(filepath.Join(proc, "[0-9]*", "stat"))
	var ticks uint64
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended meanwhile
		}
		i := strings.LastIndexByte(string(raw), ')')
		fields := strings.Fields(string(raw[i+1:]))
		if i < 0 || len(fields) < 13 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		u, _ := strconv.ParseUint(fields[11], 10, 64)
		s, _ := strconv.ParseUint(fields[12], 10, 64)
		ticks += u + s
	}
	return ticks
}

// readCPU reads the aggregate "cpu" line of /proc/stat: user nice system
// idle iowait irq softirq steal ...; idle and iowait are not busy.
func readCPU(path string) (cpuTimes, error) {
	f, err := os.Open(path)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("reading CPU counters: %w", err)
	}
	defer f.Close()
	return parseCPU(f, path)
}

// parseCPU reads the "cpu" line from the text of /proc/stat.
func parseCPU(r io.Reader, path string) (cpuTimes, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != "cpu" {
			continue
		}
		var c cpuTimes
		for i, field := range fields[1:] {
			v, err := strconv.ParseUint(field, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("reading CPU counters: %q is not a counter", field)
			}
			// Guest time is already counted in user time.
			if i >= 8 {
				break
			}
			if c.total+v < c.total {
				return cpuTimes{}, fmt.Errorf("reading CPU counters: the counters add up past 2^64")
			}
			c.total += v
			if i != 3 && i != 4 {
				c.busy += v
			}
		}
		return c, nil
	}
	return cpuTimes{}, fmt.Errorf("reading CPU counters: no cpu line in %s", path)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
