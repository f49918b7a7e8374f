package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// A synthetic session proves what a handshake cannot: that the media
// server carries media. It publishes a short test stream on one
// connection and plays it on another, and measures how long after the
// play command the first audio or video message arrives. A node whose
// media server accepts connections but relays nothing (a wedged worker,
// a broken application block) passes every port check and fails this.

// RTMP message types the session uses.
const (
	msgSetChunkSize = 1
	msgAck          = 3
	msgAudio        = 8
	msgVideo        = 9
	msgCommand      = 20
)

// mediaInterval is how often the test publisher sends a frame: a player
// that joins between two frames waits at most this long for one.
const mediaInterval = 40 * time.Millisecond

// RTMPSession publishes a test stream to app on addr, plays it back and
// returns the time from the play command to the first media message. It
// fails when none arrives within limit, or when ctx ends first.
func RTMPSession(ctx context.Context, addr, app string, limit time.Duration) (time.Duration, error) {
	name, err := streamName()
	if err != nil {
		return 0, err
	}
	pub, err := dialStream(ctx, addr, app, "publish", name, "live")
	if err != nil {
		return 0, fmt.Errorf("publishing a test stream: %w", err)
	}
	defer pub.Close()
	// The server's answers to the publisher are not needed; reading them
	// keeps its sends from blocking.
	go func() { _, _ = io.Copy(io.Discard, pub) }()
	sending, stopSending := context.WithCancel(ctx)
	defer stopSending()
	go publishFrames(sending, pub)

	play, err := dialStream(ctx, addr, app, "play", name)
	if err != nil {
		return 0, fmt.Errorf("playing the test stream: %w", err)
	}
	defer play.Close()
	asked := time.Now()
	deadline := asked.Add(limit)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = play.SetReadDeadline(deadline)
	r := newChunkReader(play)
	for {
		typ, _, err := r.next()
		if err != nil {
			var timeout net.Error
			if errors.As(err, &timeout) && timeout.Timeout() {
				return time.Since(asked), fmt.Errorf("no media reached the player within %s of its play command (test stream %s/%s)", time.Since(asked).Round(time.Millisecond), app, name)
			}
			return time.Since(asked), fmt.Errorf("playing the test stream: %w", err)
		}
		if typ == msgAudio || typ == msgVideo {
			return time.Since(asked), nil
		}
	}
}

// dialStream connects to addr and opens an RTMP stream on it (OpenRTMP),
// within ctx's deadline.
func dialStream(ctx context.Context, addr, app, command string, args ...string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := OpenRTMP(conn, addr, app, command, args...); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func streamName() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "mediascale-probe-" + hex.EncodeToString(b), nil
}

// OpenRTMP does the handshake on conn and sends connect, createStream and
// the stream command (publish or play, with its arguments) at once;
// nginx-rtmp handles them in order, so no answer needs waiting for.
func OpenRTMP(conn net.Conn, addr, app, command string, args ...string) error {
	if err := RTMPHandshake(conn); err != nil {
		return err
	}
	var out bytes.Buffer
	writeMessage(&out, 2, msgSetChunkSize, 0, binary.BigEndian.AppendUint32(nil, 4096))
	writeMessage(&out, 3, msgCommand, 0, amf0("connect", 1.0, map[string]string{"app": app, "tcUrl": "rtmp://" + addr + "/" + app}))
	writeMessage(&out, 3, msgCommand, 0, amf0("createStream", 2.0, nil))
	values := []any{command, 0.0, nil}
	for _, a := range args {
		values = append(values, a)
	}
	// nginx-rtmp gives the first stream of a connection id 1.
	writeMessage(&out, 8, msgCommand, 1, amf0(values...))
	if _, err := conn.Write(out.Bytes()); err != nil {
		return fmt.Errorf("sending %s: %w", command, err)
	}
	return nil
}

// publishFrames sends a small video key frame and an audio frame every
// mediaInterval until ctx ends. Their codecs (Sorenson H.263, MP3) need no
// sequence header, so the server relays them to a player at once.
func publishFrames(ctx context.Context, conn net.Conn) {
	t := time.NewTicker(mediaInterval)
	defer t.Stop()
	start := time.Now()
	for {
		ts := uint32(time.Since(start).Milliseconds())
		var out bytes.Buffer
		writeTimedMessage(&out, 6, msgVideo, 1, ts, []byte{0x12, 0, 0, 0})
		writeTimedMessage(&out, 4, msgAudio, 1, ts, []byte{0x2f, 0, 0, 0})
		if _, err := conn.Write(out.Bytes()); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RTMPAck is an Acknowledgement of seq: any message from a client resets
// nginx-rtmp's ping timer, and an acknowledgement keeps the server's send
// window open.
func RTMPAck(seq uint32) []byte {
	var b bytes.Buffer
	writeMessage(&b, 2, msgAck, 0, binary.BigEndian.AppendUint32(nil, seq))
	return b.Bytes()
}

// writeMessage writes one message as a single type-0 chunk, timestamp 0.
func writeMessage(w *bytes.Buffer, csid, typ byte, streamID uint32, payload []byte) {
	writeTimedMessage(w, csid, typ, streamID, 0, payload)
}

// writeTimedMessage writes one message, at most one chunk long, as a
// type-0 chunk.
func writeTimedMessage(w *bytes.Buffer, csid, typ byte, streamID, ts uint32, payload []byte) {
	w.WriteByte(csid)
	w.Write([]byte{byte(ts >> 16), byte(ts >> 8), byte(ts)})
	n := len(payload)
	w.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
	w.WriteByte(typ)
	_ = binary.Write(w, binary.LittleEndian, streamID)
	w.Write(payload)
}

// amf0 encodes strings, numbers, nil and string objects in AMF0, which is
// all the session's commands use.
func amf0(values ...any) []byte {
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
		case map[string]string:
			b.WriteByte(0x03)
			for _, k := range []string{"app", "tcUrl"} {
				if s, ok := x[k]; ok {
					_ = binary.Write(&b, binary.BigEndian, uint16(len(k)))
					b.WriteString(k)
					b.Write(amf0(s))
				}
			}
			b.Write([]byte{0, 0, 9})
		default:
			b.WriteByte(0x05)
		}
	}
	return b.Bytes()
}

// chunkReader reassembles RTMP messages from the chunk stream a server
// sends: the four chunk header formats, extended timestamps and the
// server's own chunk size.
type chunkReader struct {
	r      *bufio.Reader
	size   int
	stream map[uint32]*chunkStream
}

// chunkStream is what the headers of one chunk stream carry over from
// message to message and chunk to chunk.
type chunkStream struct {
	length   uint32
	typ      byte
	extended bool
	buf      []byte
}

func newChunkReader(r io.Reader) *chunkReader {
	return &chunkReader{r: bufio.NewReader(r), size: 128, stream: map[uint32]*chunkStream{}}
}

// maxMessage bounds what one message may claim to be, so a broken or
// hostile server cannot make the probe allocate without limit.
const maxMessage = 1 << 22

// next returns the next whole message.
func (c *chunkReader) next() (byte, []byte, error) {
	for {
		b0, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		format, csid := b0>>6, uint32(b0&0x3f)
		switch csid {
		case 0:
			b, err := c.r.ReadByte()
			if err != nil {
				return 0, nil, err
			}
			csid = 64 + uint32(b)
		case 1:
			var b [2]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return 0, nil, err
			}
			csid = 64 + uint32(b[0]) + uint32(b[1])<<8
		}
		st := c.stream[csid]
		if st == nil {
			st = &chunkStream{}
			c.stream[csid] = st
		}
		header := [4]int{11, 7, 3, 0}[format]
		var h [11]byte
		if _, err := io.ReadFull(c.r, h[:header]); err != nil {
			return 0, nil, err
		}
		if format < 3 {
			st.extended = h[0] == 0xff && h[1] == 0xff && h[2] == 0xff
		}
		if format <= 1 {
			st.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
			st.typ = h[6]
			if st.length > maxMessage {
				return 0, nil, fmt.Errorf("a message of %d bytes", st.length)
			}
		}
		if st.extended {
			var ext [4]byte
			if _, err := io.ReadFull(c.r, ext[:]); err != nil {
				return 0, nil, err
			}
		}
		n := min(int(st.length)-len(st.buf), c.size)
		chunk := make([]byte, n)
		if _, err := io.ReadFull(c.r, chunk); err != nil {
			return 0, nil, err
		}
		st.buf = append(st.buf, chunk...)
		if len(st.buf) < int(st.length) {
			continue
		}
		msg := st.buf
		st.buf = nil
		if st.typ == msgSetChunkSize && len(msg) >= 4 {
			size := int(binary.BigEndian.Uint32(msg) & 0x7fffffff)
			if size < 1 || size > maxMessage {
				return 0, nil, fmt.Errorf("a chunk size of %d", size)
			}
			c.size = size
		}
		return st.typ, msg, nil
	}
}
