// Package rtmpclient is a small RTMP player for local load: it performs
// the handshake, connects to an application, creates a stream and plays
// it, then holds the session (reading and acknowledging what the server
// sends) until its context ends. A media server counts it as a client of
// the stream, like any player, at a fraction of ffmpeg's cost, so a local
// run can hold dozens of real sessions on two cores.
package rtmpclient

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mediascale/mediascale/shared/health"
)

// ackEvery is how often the player acknowledges what it received (see
// health.RTMPAck).
const ackEvery = 10 * time.Second

// Play holds one playing session on addr (host:port) of app/stream until
// ctx ends. It returns nil when ctx ended the session, or the error that
// ended it first. ready is closed once the play command is sent.
func Play(ctx context.Context, addr, app, stream string, ready chan<- struct{}) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := health.OpenRTMP(conn, addr, app, "play", stream); err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	if ready != nil {
		close(ready)
	}
	received := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, conn)
		received <- n
	}()
	t := time.NewTicker(ackEvery)
	defer t.Stop()
	var seq uint32
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-received:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the server closed the session")
		case <-t.C:
			seq++
			if _, err := conn.Write(health.RTMPAck(seq)); err != nil {
				return nil
			}
		}
	}
}
