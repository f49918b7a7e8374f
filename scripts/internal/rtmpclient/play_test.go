package rtmpclient

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/health"
)

func TestPlayersAreSessionsOfARealMediaServer(t *testing.T) {
	n := medianode.StartForTest(t)
	ep := health.Endpoint{Host: n.Host, HealthPort: n.HealthPort, MediaPort: n.MediaPort}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	for _, stream := range []string{"a", "a", "b"} {
		ready := make(chan struct{})
		go func() { done <- Play(ctx, n.MediaAddr(), "live", stream, ready) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("player ended before playing: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("player did not start")
		}
	}
	hc := &http.Client{Timeout: time.Second}
	count := func() int {
		st, err := health.ReadStat(context.Background(), hc, ep)
		if err != nil {
			t.Fatal(err)
		}
		return st.Sessions
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() != 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := count(); got != 3 {
		t.Fatalf("the server counts %d sessions, want the 3 players", got)
	}
	cancel()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatalf("a player ended with %v", err)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for count() != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := count(); got != 0 {
		t.Fatalf("%d sessions left after the players stopped", got)
	}
}
