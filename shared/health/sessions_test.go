package health

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mediascale/mediascale/scripts/testkit/medianode"
)

// waitSessions polls until the node reports want sessions or a bounded
// time passes, and returns the last count.
func waitSessions(t *testing.T, ep Endpoint, want int) int {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	got := -1
	for i := 0; i < 50; i++ {
		n, _, err := Sessions(context.Background(), c, ep)
		if err != nil {
			t.Fatal(err)
		}
		if got = n; got == want {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got
}

func TestSessionsCountsAndClosesRealRTMPSessions(t *testing.T) {
	node := medianode.StartForTest(t)
	ep := Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: node.MediaPort}
	if n := waitSessions(t, ep, 0); n != 0 {
		t.Fatalf("an idle node reports %d sessions", n)
	}
	a := node.Publish(t, "show-a", 30)
	b := node.Publish(t, "show-b", 30)
	if n := waitSessions(t, ep, 2); n != 2 {
		t.Fatalf("two publishers, node reports %d sessions", n)
	}
	dropped, err := CloseSessions(context.Background(), &http.Client{Timeout: time.Second}, ep)
	if err != nil || dropped != 2 {
		t.Fatalf("closed %d sessions, %v; want 2", dropped, err)
	}
	if n := waitSessions(t, ep, 0); n != 0 {
		t.Fatalf("%d sessions left after closing", n)
	}
	for _, cmd := range []interface{ Wait() error }{a, b} {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a publisher kept running after its session was closed")
		}
	}
}
