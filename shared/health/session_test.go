package health

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/scripts/testkit/medianode"
)

func TestASyntheticSessionGetsMediaBackFromRealNginxRTMP(t *testing.T) {
	node := medianode.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	took, err := RTMPSession(ctx, node.MediaAddr(), "live", 2*time.Second)
	if err != nil {
		t.Fatalf("a synthetic session on nginx-rtmp: %v", err)
	}
	t.Logf("first media %s after play", took)
	// An application the server does not have carries nothing.
	if _, err := RTMPSession(ctx, node.MediaAddr(), "vod", 500*time.Millisecond); err == nil {
		t.Fatal("a session on an application nginx does not serve got media")
	}
}

// mute completes the RTMP handshake as a server and then reads
// everything and sends nothing: a media server that is up and relays no
// media. It returns the port.
func mute(t *testing.T) int {
	return serve(t, func(conn net.Conn) {
		c0c1 := make([]byte, 1+rtmpPacket)
		if _, err := io.ReadFull(conn, c0c1); err != nil {
			return
		}
		// S0, S1, and S2 echoing C1.
		if _, err := conn.Write(append(append([]byte{3}, make([]byte, rtmpPacket)...), c0c1[1:]...)); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, conn)
	})
}

func TestANodeThatShakesHandsButCarriesNoMediaFailsTheSession(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(mute(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := MediaCheck(ctx, addr, "rtmp"); err != nil {
		t.Fatalf("the mute server should pass the handshake: %v", err)
	}
	took, err := RTMPSession(ctx, addr, "live", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no media reached the player within") {
		t.Fatalf("a mute server: %v", err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("waited %s for media, want the 300ms limit", took)
	}
}

func TestChunksOfEveryHeaderFormatReassembleIntoMessages(t *testing.T) {
	// A 300-byte video message in 128-byte chunks (format 0 then two
	// format 3), a Set Chunk Size to 4096, then an audio message with a
	// format 1 header on the same chunk stream and a format 2 repeat.
	var b []byte
	video := make([]byte, 300)
	b = append(b, 0x06, 0, 0, 0, 0, 0x01, 0x2c, msgVideo, 1, 0, 0, 0)
	b = append(b, video[:128]...)
	b = append(b, 0xc6)
	b = append(b, video[128:256]...)
	b = append(b, 0xc6)
	b = append(b, video[256:]...)
	b = append(b, 0x02, 0, 0, 0, 0, 0, 4, msgSetChunkSize, 0, 0, 0, 0, 0, 0, 0x10, 0)
	b = append(b, 0x46, 0, 0, 10, 0, 0, 2, msgAudio, 0xaf, 0x01)
	b = append(b, 0x86, 0, 0, 10, 0xaf, 0x01)
	r := newChunkReader(strings.NewReader(string(b)))
	var got []string
	for {
		typ, msg, err := r.next()
		if err != nil {
			break
		}
		got = append(got, string(rune('0'+typ))+":"+itoa(len(msg)))
	}
	want := []string{"9:300", "1:4", "8:2", "8:2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("messages %v, want %v", got, want)
	}
	if r.size != 4096 {
		t.Fatalf("chunk size %d after Set Chunk Size 4096", r.size)
	}
}
