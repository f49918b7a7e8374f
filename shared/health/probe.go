package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mediascale/mediascale/shared/pool"
)

// Measurement is what one probe saw. ProbeFailed errors carry it, so an
// operator reads the numbers that failed, not just "unhealthy".
type Measurement struct {
	Healthy       bool    `json:"healthy"`
	HTTPStatus    int     `json:"httpStatus,omitempty"`
	HTTPLatencyMs float64 `json:"httpLatencyMs,omitempty"`
	MediaOK       bool    `json:"mediaOk"`
	MediaMs       float64 `json:"mediaMs,omitempty"`
	// FirstMediaMs is how long the synthetic session's player waited for
	// its first frame (probe.session), when one was made.
	FirstMediaMs float64 `json:"firstMediaMs,omitempty"`
	Reason       string  `json:"reason"`
}

func (m Measurement) String() string {
	s := fmt.Sprintf("%s (http status %d in %.1f ms, media ok=%v in %.1f ms", m.Reason, m.HTTPStatus, m.HTTPLatencyMs, m.MediaOK, m.MediaMs)
	if m.FirstMediaMs > 0 {
		s += fmt.Sprintf(", first media after %.1f ms", m.FirstMediaMs)
	}
	return s + ")"
}

// Prober checks one node's health endpoint and media port.
type Prober struct {
	HTTP *http.Client
}

// Probe runs the health check and then the media check, each bounded by
// the probe timeout, and judges the result against the configured latency.
func (pr Prober) Probe(ctx context.Context, ep Endpoint, spec pool.Probe) Measurement {
	var m Measurement
	timeout := spec.Timeout.D()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(ep.Host, strconv.Itoa(ep.HealthPort)) + spec.HealthPath
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, url, nil)
	if err != nil {
		m.Reason = fmt.Sprintf("health request: %v", err)
		return m
	}
	start := time.Now()
	resp, err := pr.HTTP.Do(req)
	m.HTTPLatencyMs = ms(time.Since(start))
	if err != nil {
		m.Reason = fmt.Sprintf("health endpoint %s: %v", url, err)
		return m
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	m.HTTPStatus = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		m.Reason = fmt.Sprintf("health endpoint %s answered %d", url, resp.StatusCode)
		return m
	}
	if lat := time.Duration(m.HTTPLatencyMs * float64(time.Millisecond)); lat > spec.MaxLatency.D() {
		m.Reason = fmt.Sprintf("health endpoint took %.1f ms, above the %s limit", m.HTTPLatencyMs, spec.MaxLatency)
		return m
	}

	mctx, cancel2 := context.WithTimeout(ctx, timeout)
	defer cancel2()
	addr := net.JoinHostPort(ep.Host, strconv.Itoa(ep.MediaPort))
	start = time.Now()
	err = MediaCheck(mctx, addr, spec.Handshake)
	m.MediaMs = ms(time.Since(start))
	if err != nil {
		m.Reason = fmt.Sprintf("media port %s: %v", addr, err)
		return m
	}
	m.MediaOK = true
	if lat := time.Duration(m.MediaMs * float64(time.Millisecond)); lat > spec.MaxLatency.D() {
		m.Reason = fmt.Sprintf("%s handshake took %.1f ms, above the %s limit", spec.Handshake, m.MediaMs, spec.MaxLatency)
		return m
	}
	if s := spec.Session; s != nil && spec.Handshake == pool.HandshakeRTMP {
		sctx, cancel3 := context.WithTimeout(ctx, timeout)
		defer cancel3()
		took, err := RTMPSession(sctx, addr, s.App, s.MaxTimeToFirstMedia.D())
		m.FirstMediaMs = ms(took)
		if err != nil {
			m.Reason = fmt.Sprintf("synthetic session on %s: %v (limit %s)", addr, err, s.MaxTimeToFirstMedia)
			return m
		}
	}
	m.Healthy = true
	m.Reason = "healthy"
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MediaCheck connects to a media port and, for RTMP, completes the protocol
// handshake. A TCP check only proves the port accepts connections.
func MediaCheck(ctx context.Context, addr, handshake string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	switch handshake {
	case pool.HandshakeTCP:
		return nil
	case pool.HandshakeRTMP:
		return RTMPHandshake(conn)
	default:
		return fmt.Errorf("unknown handshake %q", handshake)
	}
}

// rtmpPacket is the size of C1, S1, C2 and S2.
const rtmpPacket = 1536

// RTMPHandshake performs the plain RTMP handshake as a client: C0+C1 out,
// S0+S1+S2 in, C2 out. The server must speak version 3 and S2 must echo
// the random bytes of C1; anything else is not an RTMP server that works.
func RTMPHandshake(conn io.ReadWriter) error {
	c1 := make([]byte, rtmpPacket)
	binary.BigEndian.PutUint32(c1[0:4], uint32(time.Now().UnixMilli()))
	// Bytes 4..8 stay zero: a plain (not digest) handshake.
	if _, err := rand.Read(c1[8:]); err != nil {
		return err
	}
	if _, err := conn.Write(append([]byte{3}, c1...)); err != nil {
		return fmt.Errorf("sending C0+C1: %w", err)
	}
	reply := make([]byte, 1+2*rtmpPacket)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return fmt.Errorf("reading S0+S1+S2: %w", err)
	}
	if reply[0] != 3 {
		return fmt.Errorf("S0 is version %d, want 3", reply[0])
	}
	s1 := reply[1 : 1+rtmpPacket]
	s2 := reply[1+rtmpPacket:]
	if !bytes.Equal(s2[8:], c1[8:]) {
		return fmt.Errorf("S2 does not echo C1: not a working RTMP server")
	}
	if _, err := conn.Write(s1); err != nil {
		return fmt.Errorf("sending C2: %w", err)
	}
	return nil
}
