// Package rtmpclient is a small RTMP player for local load: it performs
// the handshake, connects to an application, creates a stream and plays
// it, then holds the session (reading and acknowledging what the server
// sends) until its context ends. A media server counts it as a client of
// the stream, like any player, at a fraction of ffmpeg's cost, so a local
// run can hold dozens of real sessions on two cores.
package rtmpclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/mediascale/mediascale/shared/health"
)

// ackEvery is how often the player acknowledges what it received. Any
// message from a client resets nginx-rtmp's ping timer, and the
// acknowledgement keeps the server's send window open.
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
	if err := health.RTMPHandshake(conn); err != nil {
		return err
	}
	var out bytes.Buffer
	// Set Chunk Size (protocol control, chunk stream 2): our commands then
	// fit in one chunk each.
	writeMessage(&out, 2, 1, 0, binary.BigEndian.AppendUint32(nil, 4096))
	writeMessage(&out, 3, 20, 0, amf(
		"connect", 1.0, map[string]any{"app": app, "tcUrl": "rtmp://" + addr + "/" + app, "flashVer": "LNX 9,0,124,2"}))
	writeMessage(&out, 3, 20, 0, amf("createStream", 2.0, nil))
	// nginx-rtmp gives the first stream of a connection id 1.
	writeMessage(&out, 8, 20, 1, amf("play", 0.0, nil, stream))
	if _, err := conn.Write(out.Bytes()); err != nil {
		return fmt.Errorf("sending play: %w", err)
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
			var ack bytes.Buffer
			writeMessage(&ack, 2, 3, 0, binary.BigEndian.AppendUint32(nil, seq))
			if _, err := conn.Write(ack.Bytes()); err != nil {
				return nil
			}
		}
	}
}

// writeMessage writes one message as a single type-0 chunk.
func writeMessage(w *bytes.Buffer, csid byte, typ byte, streamID uint32, payload []byte) {
	w.WriteByte(csid) // format 0
	w.Write([]byte{0, 0, 0})
	n := len(payload)
	w.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
	w.WriteByte(typ)
	_ = binary.Write(w, binary.LittleEndian, streamID)
	w.Write(payload)
}

// amf encodes values in AMF0: strings, numbers, nil and string-keyed
// objects, which is all the commands above use.
func amf(values ...any) []byte {
	var b bytes.Buffer
	for _, v := range values {
		switch x := v.(type) {
		case string:
			b.WriteByte(0x02)
			_ = binary.Write(&b, binary.BigEndian, uint16(len(x)))
			b.WriteString(x)
		case float64:
			b.WriteByte(0x00)
			_ = binary.Write(&b, binary.BigEndian, math.Float64bits(x))
		case map[string]any:
			b.WriteByte(0x03)
			for _, k := range []string{"app", "flashVer", "tcUrl"} {
				if s, ok := x[k].(string); ok {
					_ = binary.Write(&b, binary.BigEndian, uint16(len(k)))
					b.WriteString(k)
					b.Write(amf(s))
				}
			}
			b.Write([]byte{0, 0, 9})
		default:
			b.WriteByte(0x05)
		}
	}
	return b.Bytes()
}
