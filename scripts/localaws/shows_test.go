package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
)

// TestAnAnnouncedShowIsServedWhenItsCrowdComes runs the closed loop (the
// dev-loop pool: a node carries 6.4 sessions at target, min 1, max 6)
// with a show announced a little ahead: the floor rises one lead time
// before the start, the nodes are ACTIVE when the crowd arrives, and once
// the show is cancelled its floor is gone and the pool shrinks back.
func TestAnAnnouncedShowIsServedWhenItsCrowdComes(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "LOOP=1", "POOLS=infra/config/dev-loop.yaml")
	ctx := context.Background()
	const name = "live-rtmp-use1"
	waitFor(t, "the pool at min, reporting", 3*time.Minute, func() bool {
		return len(c.nodesWhere(func(n fleet.Node) bool { return n.State == fleet.Active && n.Heartbeat != nil })) == 1
	})
	// The pool's measured lead, as the forecaster would write it: 90 s.
	const lead = 90 * time.Second
	if err := c.store.PutForecast(ctx, name, fleet.Forecast{At: time.Now().UTC(), LeadSeconds: int(lead.Seconds()), Reason: "test: a measured lead of 90 s"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(2 * time.Minute).Truncate(time.Second).UTC()
	// 24 sessions need ceil(24 / 6.4) = 4 nodes.
	if _, err := c.store.AnnounceShow(ctx, fleet.Show{Pool: name, ID: "final", Start: start, Peak: 24, By: "test", Reason: "the cup final"}); err != nil {
		t.Fatal(err)
	}
	raised := func() (time.Time, bool) {
		for _, d := range c.decisions(name) {
			if d.Msg == "controller decision" && strings.Contains(d.Reason, "show final floor 4") {
				return d.At, true
			}
		}
		return time.Time{}, false
	}
	var at time.Time
	t.Run("the floor rises one lead time before the start, or one warm lead once the warm pool covers the show", func(t *testing.T) {
		waitFor(t, "a decision refilling to the show's floor", 2*time.Minute, func() bool {
			var ok bool
			at, ok = raised()
			return ok
		})
		// The warm pool grows ahead of the show (one lead before its
		// floor); once it holds the three nodes the show needs beyond the
		// serving one, the floor waits for one warm lead (a minute plus
		// the shift bakes). Decisions come every schedule tick (10 s
		// here); the first to see the floor is at most a tick late.
		p, _ := c.pools.Find(name)
		cold, warm := start.Add(-lead), start.Add(-p.WarmLead())
		if at.Before(cold.Add(-time.Second)) || at.After(warm.Add(15*time.Second)) {
			t.Fatalf("the floor rose at %s; the show starts at %s, so at %s (lead %s) or %s (warm lead %s)", at.Format(time.TimeOnly), start.Format(time.TimeOnly),
				cold.Format(time.TimeOnly), lead, warm.Format(time.TimeOnly), p.WarmLead())
		}
		t.Logf("floor raised %s before the start (lead %s, warm lead %s)", start.Sub(at).Round(time.Second), lead, p.WarmLead())
	})
	firstActive := c.watchActive(t)
	t.Run("the nodes serve before the crowd comes, and it finds room", func(t *testing.T) {
		waitFor(t, "4 ACTIVE nodes", 3*time.Minute, func() bool { return c.count(fleet.Active) == 4 })
		ready := time.Now()
		if ready.After(start) {
			t.Errorf("4 nodes ACTIVE at %s, after the show's start at %s", ready.Format(time.TimeOnly), start.Format(time.TimeOnly))
		}
		for id, when := range firstActive() {
			t.Logf("node %s ACTIVE %s before the start", id, start.Sub(when).Round(time.Second))
		}
		time.Sleep(time.Until(start))
		crowd := c.play(t, 24)
		defer crowd.stop()
		time.Sleep(5 * time.Second)
		if n := c.count(fleet.Active); n != 4 {
			t.Fatalf("%d ACTIVE nodes once the crowd came, want the show's 4", n)
		}
	})
	t.Run("a cancelled show's floor is released: the quiet pool shrinks back to min", func(t *testing.T) {
		if cancelled, err := c.store.CancelShow(ctx, name, "final", "test"); err != nil || !cancelled {
			t.Fatalf("cancel: %v, %v", cancelled, err)
		}
		// The show's grace (ten minutes after its start) would hold the
		// floor well past this wait; cancelled, it holds nothing.
		waitFor(t, "the pool back at 1 node", 4*time.Minute, func() bool {
			return c.count(fleet.Active) == 1 && c.count(fleet.Draining) == 0
		})
	})
}
