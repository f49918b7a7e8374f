package simulation

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// FuzzParseTrace: a trace file, however broken, is refused with an error
// or read into points the simulator can walk: increasing times within 30
// days, finite sessions of at least 0.
func FuzzParseTrace(f *testing.F) {
	f.Add([]byte(csv(0, 10, 60, 20, 120, 5)))
	f.Add([]byte("seconds,sessions\n0,1\n\n10.5, 2e3\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr, err := ParseTrace(bytes.NewReader(raw))
		if err != nil {
			return
		}
		for i, p := range tr.Points {
			if p.At < 0 || p.At > MaxTraceLength || p.Sessions < 0 || math.IsNaN(p.Sessions) || math.IsInf(p.Sessions, 0) {
				t.Fatalf("accepted point %d %+v", i, p)
			}
			if i > 0 && p.At <= tr.Points[i-1].At {
				t.Fatalf("accepted times out of order at %d", i)
			}
		}
	})
}

// FuzzLoadModel: a model file is refused or gives a model that passes its
// own checks.
func FuzzLoadModel(f *testing.F) {
	f.Add([]byte("step: 10s\nlaunchCold: 40s\ncapacityFailureRate: 0.1\nseed: 3\n"))
	f.Add([]byte(`{"deploy": "5s", "sessionLifetime": "30m"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := LoadModel(strings.NewReader(string(raw)))
		if err != nil {
			return
		}
		if err := m.check(); err != nil {
			t.Fatalf("accepted a model its check refuses: %v", err)
		}
	})
}

// FuzzParseShows: a show file is refused or gives shows the simulator can
// use: named, within a trace, with an audience and a bounded ramp.
func FuzzParseShows(f *testing.F) {
	f.Add([]byte("shows:\n  - name: final\n    at: 10m\n    peak: 15000\n    ramp: 2m\n"))
	f.Add([]byte(`{"shows": [{"name": "x", "at": "1h", "peak": 3, "duration": "2h"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		shows, err := ParseShows(bytes.NewReader(raw))
		if err != nil {
			return
		}
		for i, s := range shows {
			if s.Name == "" || s.At < 0 || s.At.D() > MaxTraceLength || s.Peak < 1 || s.Ramp < 0 || s.Ramp.D() > time.Hour || s.Duration <= 0 {
				t.Fatalf("accepted show %d %+v", i, s)
			}
		}
	})
}
