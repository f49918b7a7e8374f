package simulation

import (
	"math"
	"testing"
	"time"
)

// BenchmarkCompare14DaysAt10s runs every policy over fourteen days of a
// diurnal curve at 10-second resolution (120,961 points), the size the
// simulator promises to handle in under 30 s.
func BenchmarkCompare14DaysAt10s(b *testing.B) {
	p := devPool(b, "live-rtmp-use1")
	var tr Trace
	for s := 0; s <= 14*86400; s += 10 {
		hour := math.Mod(float64(s), 86400) / 3600
		tr.Points = append(tr.Points, Point{At: time.Duration(s) * time.Second, Sessions: 400 + 5000*math.Exp(-(hour-20.5)*(hour-20.5)/3)})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compare(p, DefaultModel(), tr, "diurnal"); err != nil {
			b.Fatal(err)
		}
	}
}
