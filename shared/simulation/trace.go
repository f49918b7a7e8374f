// Package simulation replays a traffic trace through a pool's scaling
// policy, mediascale's own controller (package capacity, the code the
// Lambdas run) and its peers', under one model of the time AWS takes, and
// scores each with the SPEC Research Group's elasticity metrics and the
// user's view: sessions on a full node, sessions refused or cut, cost.
package simulation

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxTraceLength is the longest trace the simulator takes.
const MaxTraceLength = 30 * 24 * time.Hour

// Point is the number of concurrent sessions wanting service from At
// (from the trace's start) until the next point.
type Point struct {
	At       time.Duration
	Sessions float64
}

// Trace is a demand curve.
type Trace struct {
	Points []Point
}

// Duration is the time from the start to the last point.
func (t Trace) Duration() time.Duration {
	if len(t.Points) == 0 {
		return 0
	}
	return t.Points[len(t.Points)-1].At
}

// cursor reads a trace forward in time in O(1) per step.
type cursor struct {
	t Trace
	i int
}

// at is the demand at offset d: the last point at or before it.
func (c *cursor) at(d time.Duration) float64 {
	for c.i+1 < len(c.t.Points) && c.t.Points[c.i+1].At <= d {
		c.i++
	}
	if len(c.t.Points) == 0 || c.t.Points[c.i].At > d {
		return 0
	}
	return c.t.Points[c.i].Sessions
}

// ParseTrace reads a CSV trace: a header line "seconds,sessions", then
// one line per point, seconds from the start (increasing, at most 30
// days) and concurrent sessions (a finite number, not negative).
func ParseTrace(r io.Reader) (Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	line := 0
	var t Trace
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			if strings.ReplaceAll(text, " ", "") != "seconds,sessions" {
				return Trace{}, fmt.Errorf("trace line 1: want the header seconds,sessions, got %q", cut(text))
			}
			continue
		}
		if text == "" {
			continue
		}
		secText, sessText, ok := strings.Cut(text, ",")
		if !ok {
			return Trace{}, fmt.Errorf("trace line %d: want seconds,sessions, got %q", line, cut(text))
		}
		sec, err := strconv.ParseFloat(strings.TrimSpace(secText), 64)
		if err != nil || math.IsNaN(sec) || sec < 0 || sec > MaxTraceLength.Seconds() {
			return Trace{}, fmt.Errorf("trace line %d: seconds must be a number from 0 to %d, got %q", line, int(MaxTraceLength.Seconds()), cut(secText))
		}
		sessions, err := strconv.ParseFloat(strings.TrimSpace(sessText), 64)
		if err != nil || math.IsNaN(sessions) || math.IsInf(sessions, 0) || sessions < 0 {
			return Trace{}, fmt.Errorf("trace line %d: sessions must be a number of at least 0, got %q", line, cut(sessText))
		}
		at := time.Duration(sec * float64(time.Second))
		if n := len(t.Points); n > 0 && at <= t.Points[n-1].At {
			return Trace{}, fmt.Errorf("trace line %d: seconds must increase (%g after %g)", line, sec, t.Points[n-1].At.Seconds())
		}
		t.Points = append(t.Points, Point{At: at, Sessions: sessions})
	}
	if err := sc.Err(); err != nil {
		return Trace{}, fmt.Errorf("reading the trace: %w", err)
	}
	if len(t.Points) < 2 {
		return Trace{}, fmt.Errorf("a trace needs at least two points after its header, got %d", len(t.Points))
	}
	return t, nil
}

func cut(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
