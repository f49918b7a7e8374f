package fleet

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHeartbeatsLandOnServingNodesOnlyOnMoto(t *testing.T) {
	s, _, c := newMotoStore(t)
	ctx := context.Background()
	n, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1", Execution: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	hb := Heartbeat{At: c.Now(), Healthy: true, Load: Load{Connections: 42, CPUPercent: 12.5, BandwidthMbps: 80}}
	if _, err := s.Heartbeat(ctx, "live", "n1", hb); !errors.Is(err, ErrNotReporting) {
		t.Fatalf("a PENDING node took a heartbeat: %v", err)
	}
	for _, to := range []State{Provisioning, Deploying, Probing} {
		if n, err = s.Transition(ctx, "live", "n1", n.State, n.Version, to, Change{}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.Heartbeat(ctx, "live", "n1", hb); err != nil || st != Probing {
		t.Fatalf("a PROBING node's heartbeat: %s, %v", st, err)
	}
	got, err := s.GetNode(ctx, "live", "n1")
	if err != nil || got.Heartbeat == nil || got.Heartbeat.Load != hb.Load || !got.Heartbeat.At.Equal(hb.At) || !got.Heartbeat.Healthy {
		t.Fatalf("heartbeat as stored: %+v, %v", got.Heartbeat, err)
	}
	if got.Version != n.Version || got.State != Probing {
		t.Fatalf("a heartbeat moved the node: version %d -> %d, state %s", n.Version, got.Version, got.State)
	}
	if _, err := s.Transition(ctx, "live", "n1", Probing, n.Version, Shifting, Change{}); err != nil {
		t.Fatalf("a workflow write after a heartbeat lost its race: %v", err)
	}

	// A node that left service is never brought back by its agent.
	gone, _ := s.GetNode(ctx, "live", "n1")
	if _, err := s.Transition(ctx, "live", "n1", gone.State, gone.Version, RollingBack, Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "live", "n1", hb); !errors.Is(err, ErrNotReporting) {
		t.Fatalf("a ROLLING_BACK node took a heartbeat: %v", err)
	}
	if _, err := s.Heartbeat(ctx, "live", "never-was", hb); !errors.Is(err, ErrNotReporting) {
		t.Fatalf("a heartbeat for an unknown node: %v", err)
	}
	if _, err := s.GetNode(ctx, "live", "never-was"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a heartbeat created a record: %v", err)
	}
}

func TestTheLoadWindowSlidesOnMoto(t *testing.T) {
	s, _, c := newMotoStore(t)
	ctx := context.Background()
	if w, err := s.Window(ctx, "live"); err != nil || len(w) != 0 {
		t.Fatalf("a fresh pool's window: %v, %v", w, err)
	}
	for i := range 5 {
		sample := Sample{At: c.Now(), Load: Load{Connections: float64(i)}, Reporting: 2, Capacity: 3}
		prior, err := s.Window(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSample(ctx, "live", prior, sample, 3*time.Minute, Decision{Direction: "out", Current: i, Desired: i + 1, Reason: "load"}); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
	}
	w, err := s.Window(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 3 || w[0].Load.Connections != 2 || w[2].Load.Connections != 4 || w[2].Capacity != 3 || w[2].Reporting != 2 {
		t.Fatalf("window after five samples one minute apart, keeping three minutes: %+v", w)
	}
	if d, ok, err := s.LastDecision(ctx, "live"); err != nil || !ok || d.Current != 4 || d.Desired != 5 || !d.At.Equal(w[2].At) {
		t.Fatalf("last decision %+v, %v, %v", d, ok, err)
	}
	if other, _ := s.Window(ctx, "voice"); len(other) != 0 {
		t.Fatalf("another pool's window: %+v", other)
	}
}
