package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/mediascale/mediascale/events"
)

func TestHealthBookkeepingOnMoto(t *testing.T) {
	s, _, clk := newMotoStore(t)
	ctx := context.Background()
	n, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []State{Provisioning, Deploying, Probing, Shifting, Active} {
		if n, err = s.Transition(ctx, "live", "n1", n.State, n.Version, to, Change{}); err != nil {
			t.Fatal(err)
		}
	}
	version := n.Version
	if ok, err := s.SetHealthFailures(ctx, "live", "n1", 2); !ok || err != nil {
		t.Fatalf("counting failures on an ACTIVE node: %v, %v", ok, err)
	}
	got, _ := s.GetNode(ctx, "live", "n1")
	if got.HealthFailures != 2 || got.Version != version {
		t.Fatalf("after two failures: %d failures at version %d, want 2 at %d (the count leaves the version alone)", got.HealthFailures, got.Version, version)
	}

	clk.Advance(time.Second)
	zero := 0
	out, err := s.Transition(ctx, "live", "n1", Active, got.Version, Draining, Change{Weight: &zero, Goal: events.GoalReplace, UnhealthyAt: clk.Now(),
		Reason: "unhealthy: media port refused", Execution: "heal"})
	if err != nil || !out.UnhealthyAt.Equal(clk.Now()) || out.Goal != events.GoalReplace {
		t.Fatalf("taking the node out: %+v, %v", out, err)
	}
	if ok, err := s.SetHealthFailures(ctx, "live", "n1", 3); ok || err != nil {
		t.Fatalf("counting failures on a DRAINING node wrote: %v, %v", ok, err)
	}
	for i := 0; i < 2; i++ {
		if err := s.MarkReplaced(ctx, "live", "n1", "exec-1"); err != nil {
			t.Fatalf("marking replaced (time %d): %v", i+1, err)
		}
	}
	got, _ = s.GetNode(ctx, "live", "n1")
	if got.Goal != events.GoalReplaced || got.HealthFailures != 2 || got.State != Draining {
		t.Fatalf("after the replacement started: %+v", got)
	}
}
