package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/scripts/testkit/loopback"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// writeLocalEndpoints writes the local cloud's endpoint file and points the
// process at it for the test.
func writeLocalEndpoints(t *testing.T, doc string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvLocalEndpoints, path)
}

func probePools() pool.File {
	return pool.File{Environment: "dev", Pools: []pool.Pool{{Name: "live", Probe: spec(pool.HandshakeRTMP, time.Second)}}}
}

func probeOnce(t *testing.T, h *Handler, attempt int) (Result, error) {
	t.Helper()
	raw, _ := json.Marshal(Request{Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"}, Attempt: attempt})
	return h.Handle()(context.Background(), raw)
}

func TestProbeHandlerMovesAHealthyNodeToShifting(t *testing.T) {
	node := medianode.StartForTest(t)
	writeLocalEndpoints(t, `{"default":{"host":"127.0.0.1","healthPort":`+itoa(node.HealthPort)+`,"mediaPort":`+itoa(node.MediaPort)+`}}`)
	cases := []struct {
		name, goal string
		state      fleet.State
	}{
		{"a healthy node to serve moves to SHIFTING", events.GoalServe, fleet.Shifting},
		{"a healthy node for the warm pool stays PROBING until it is parked", events.GoalWarm, fleet.Probing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Probing, PrivateIP: "10.0.0.5", Goal: tc.goal})
			h := NewHandler(Prober{HTTP: &http.Client{}}, store, probePools(), time.Now, telemetry.NewLogger(io.Discard, "probe"))
			res, err := probeOnce(t, h, 0)
			if err != nil || !res.Healthy || res.Attempt != 1 {
				t.Fatalf("probe = %+v, %v", res, err)
			}
			n := store.Node("live", "n-1")
			if n.State != tc.state || tc.state == fleet.Shifting && n.Endpoint != "127.0.0.1" {
				t.Fatalf("node = %s at %q, want %s (at the loopback node when shifting)", n.State, n.Endpoint, tc.state)
			}
		})
	}
}

func TestProbeHandlerRetriesThenFailsWithMeasurements(t *testing.T) {
	closed, _ := loopback.FreePort()
	writeLocalEndpoints(t, `{"default":{"host":"127.0.0.1","healthPort":`+itoa(closed)+`,"mediaPort":`+itoa(closed)+`}}`)
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Probing})
	h := NewHandler(Prober{HTTP: &http.Client{}}, store, probePools(), time.Now, telemetry.NewLogger(io.Discard, "probe"))
	for attempt := 0; attempt < 2; attempt++ {
		res, err := probeOnce(t, h, attempt)
		if err != nil || res.Healthy || res.Attempt != attempt+1 || res.IntervalSeconds != 1 {
			t.Fatalf("attempt %d: %+v, %v; want unhealthy, waiting 1 s", attempt, res, err)
		}
	}
	_, err := probeOnce(t, h, 2)
	var pf *events.ProbeFailed
	if !errors.As(err, &pf) || !strings.Contains(err.Error(), "failed 3 of 3 probes") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("last attempt: %v, want ProbeFailed with the measurement", err)
	}
	if n := store.Node("live", "n-1"); n.State != fleet.Probing {
		t.Fatalf("a failed probe moved the node to %s; rollback does that", n.State)
	}
}

func TestLocalEndpointsMustBeLoopback(t *testing.T) {
	writeLocalEndpoints(t, `{"default":{"host":"10.0.0.5"}}`)
	_, err := Resolve("n-1", "10.0.0.5", pool.Pool{})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("err = %v", err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestANodeIsFoundInTheEndpointFileOfItsRegion(t *testing.T) {
	dir := t.TempDir()
	east, west := filepath.Join(dir, "east.json"), filepath.Join(dir, "west.json")
	for path, doc := range map[string]string{
		east: `{"nodes":{"e-1":{"host":"127.0.3.2"}}}`,
		west: `{"nodes":{"w-1":{"host":"127.0.4.2","mediaPort":1936}}}`,
	} {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(EnvLocalEndpoints, east+string(os.PathListSeparator)+west)
	p := pool.Pool{Probe: pool.Probe{HealthPort: 8080, MediaPort: 1935}}
	for node, want := range map[string]Endpoint{
		"e-1": {Host: "127.0.3.2", HealthPort: 8080, MediaPort: 1935},
		"w-1": {Host: "127.0.4.2", HealthPort: 8080, MediaPort: 1936},
	} {
		if got, err := Resolve(node, "10.0.0.5", p); err != nil || got != want {
			t.Fatalf("%s: %+v %v, want %+v", node, got, err, want)
		}
	}
	if _, err := Resolve("x-1", "10.0.0.5", p); err == nil || !strings.Contains(err.Error(), "no entry for node x-1") {
		t.Fatalf("a node in neither file: %v", err)
	}
}
