package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/scripts/internal/rtmpclient"
	"github.com/mediascale/mediascale/shared/fleet"
)

// playOn holds n real RTMP sessions on one node until the test ends.
func playOn(t testing.TB, endpoint string, n int) *players {
	t.Helper()
	p := &players{}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	t.Cleanup(p.stop)
	for i := 0; i < n; i++ {
		ready := make(chan struct{})
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = rtmpclient.Play(p.ctx, net.JoinHostPort(endpoint, "1935"), "live", "show", ready)
		}()
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatalf("session %d on %s did not start", i, endpoint)
		}
	}
	return p
}

// TestTwoPoolsUnderOneBudgetGrowByPriority runs two closed-loop pools
// under a budget of four nodes (testdata/budget.yaml): live of priority 20
// and news of priority 10, one node each. Both are overloaded at once, each
// enough to want two more nodes; live gets them, news keeps its node and
// is told why.
func TestTwoPoolsUnderOneBudgetGrowByPriority(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "LOOP=1", "POOLS=scripts/localaws/testdata/budget.yaml")
	ctx := context.Background()
	serving := func(p string) []fleet.Node {
		nodes, err := c.store.ListNodes(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []fleet.Node
		for _, n := range nodes {
			if n.Serving() {
				out = append(out, n)
			}
		}
		return out
	}
	reporting := func(p string) (fleet.Node, bool) {
		for _, n := range serving(p) {
			if n.State == fleet.Active && n.Heartbeat != nil {
				return n, true
			}
		}
		return fleet.Node{}, false
	}
	var live, news fleet.Node
	waitFor(t, "one ACTIVE node reporting in each pool", 3*time.Minute, func() bool {
		var ok1, ok2 bool
		live, ok1 = reporting("live-rtmp-use1")
		news, ok2 = reporting("news-rtmp-use1")
		return ok1 && ok2
	})
	// 20 sessions on one node of 6.4 target: each pool's load calls for
	// 4 nodes, two more per decision.
	playOn(t, live.Endpoint, 20)
	playOn(t, news.Endpoint, 20)
	defer func() {
		if !t.Failed() {
			return
		}
		for _, name := range []string{"live-rtmp-use1", "news-rtmp-use1"} {
			all, _ := c.store.ListNodes(ctx, name)
			for _, n := range all {
				hb := "no heartbeat"
				if n.Heartbeat != nil {
					hb = fmt.Sprintf("heartbeat %s ago, healthy %t, %g sessions", time.Since(n.Heartbeat.At).Round(time.Second), n.Heartbeat.Healthy, n.Heartbeat.Load.Connections)
				}
				t.Logf("%s node %s %s weight %d (%s): %s", name, n.ID, n.State, n.Weight, hb, n.Reason)
			}
			if d, ok, _ := c.store.LastDecision(ctx, name); ok {
				t.Logf("%s last decision %s %d->%d: %s", name, d.Direction, d.Current, d.Desired, d.Reason)
			}
		}
	}()
	// Five minutes, not the two decisions this takes on a quiet machine:
	// on a CI machine running every cloud test at once a probe or a lock
	// wait can cost a decision, and the next one is a minute away.
	waitFor(t, "live grown to three serving nodes", 5*time.Minute, func() bool { return len(serving("live-rtmp-use1")) == 3 })
	var held fleet.Decision
	waitFor(t, "news's decision held by the budget", time.Minute, func() bool {
		d, ok, err := c.store.LastDecision(ctx, "news-rtmp-use1")
		held = d
		return err == nil && ok && strings.Contains(d.Reason, "the environment's budget of 4 nodes leaves it 0 of the")
	})
	t.Logf("news: %s", held.Reason)
	if d, _, _ := c.store.LastDecision(ctx, "live-rtmp-use1"); strings.Contains(d.Reason, "budget") {
		t.Fatalf("live, of higher priority, was held by the budget: %s", d.Reason)
	}
	// news never grew: its one node is the only one it ever had.
	all, err := c.store.ListNodes(ctx, "news-rtmp-use1")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || len(serving("news-rtmp-use1")) != 1 || len(serving("live-rtmp-use1")) != 3 {
		t.Fatalf("news has %d node records (%d serving), live %d serving: the budget of 4 was not shared by priority",
			len(all), len(serving("news-rtmp-use1")), len(serving("live-rtmp-use1")))
	}
}
