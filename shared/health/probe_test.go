package health

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/scripts/testkit/loopback"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/pool"
)

func spec(handshake string, maxLatency time.Duration) pool.Probe {
	return pool.Probe{
		HealthPath: "/healthz", Handshake: handshake,
		Timeout: pool.Duration(2 * time.Second), MaxLatency: pool.Duration(maxLatency), Attempts: 3, Interval: pool.Duration(time.Second),
	}
}

// serve accepts connections on loopback and hands each to handle; it
// returns the port.
func serve(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// garbageServer answers any bytes with a fixed reply that is not an RTMP
// handshake.
func garbageServer(t *testing.T, reply []byte) int {
	return serve(t, func(c net.Conn) {
		buf := make([]byte, 1537)
		_, _ = c.Read(buf)
		_, _ = c.Write(reply)
	})
}

func TestProbeAgainstRealNginxRTMP(t *testing.T) {
	node := medianode.StartForTest(t)
	closed, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	garbage := garbageServer(t, []byte(strings.Repeat("HTTP/1.1 400 Bad Request\r\n", 200)))
	wrongVersion := garbageServer(t, append([]byte{6}, make([]byte, 3072)...))
	ok := Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: node.MediaPort}
	silent := mute(t)
	withSession := func(app string, limit time.Duration) pool.Probe {
		s := spec(pool.HandshakeRTMP, time.Second)
		s.Session = &pool.SessionCheck{App: app, MaxTimeToFirstMedia: pool.Duration(limit)}
		return s
	}
	cases := []struct {
		name    string
		ep      Endpoint
		spec    pool.Probe
		healthy bool
		reason  string
	}{
		{"a healthy node passes the HTTP check and the RTMP handshake", ok, spec(pool.HandshakeRTMP, time.Second), true, "healthy"},
		{"a healthy node passes a plain TCP media check", ok, spec(pool.HandshakeTCP, time.Second), true, "healthy"},
		{"a closed media port fails", Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: closed}, spec(pool.HandshakeRTMP, time.Second), false, "connection refused"},
		{"a closed health port fails before the media check", Endpoint{Host: node.Host, HealthPort: closed, MediaPort: node.MediaPort}, spec(pool.HandshakeRTMP, time.Second), false, "health endpoint"},
		{"a server answering garbage fails the handshake", Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: garbage}, spec(pool.HandshakeRTMP, time.Second), false, "S0 is version 72, want 3"},
		{"a server whose S0 is not version 3 fails", Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: wrongVersion}, spec(pool.HandshakeRTMP, time.Second), false, "S0 is version 6"},
		{"a node slower than the latency limit fails with its measured latency", ok, spec(pool.HandshakeRTMP, time.Microsecond), false, "above the 1µs limit"},
		{"a node that carries a synthetic session's media passes", ok, withSession("live", time.Second), true, "healthy"},
		{"a node that shakes hands but carries no media fails the synthetic session", Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: silent},
			withSession("live", 300*time.Millisecond), false, "synthetic session on 127.0.0.1:" + strconv.Itoa(silent) + ": no media reached the player within"},
	}
	pr := Prober{HTTP: &http.Client{}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := pr.Probe(context.Background(), tc.ep, tc.spec)
			if m.Healthy != tc.healthy || !strings.Contains(m.Reason, tc.reason) {
				t.Fatalf("measurement = %+v, want healthy=%v with reason containing %q", m, tc.healthy, tc.reason)
			}
			if m.HTTPLatencyMs <= 0 {
				t.Fatalf("no HTTP latency measured: %+v", m)
			}
			if tc.spec.Session != nil && m.FirstMediaMs <= 0 {
				t.Fatalf("no time to first media measured: %+v", m)
			}
		})
	}
}

func TestRTMPHandshakeWithANotHandshakingPeerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = MediaCheck(ctx, l.Addr().String(), pool.HandshakeRTMP)
	if err == nil || !strings.Contains(err.Error(), "reading S0+S1+S2") {
		t.Fatalf("err = %v, want a read timeout", err)
	}
}
