package agent

import (
	"bytes"
	"testing"
)

// FuzzParseCPU: /proc/stat of any shape gives counters whose busy part
// never exceeds the total, or an error.
func FuzzParseCPU(f *testing.F) {
	f.Add([]byte("cpu  4705 356 584 3699 23 23 0 0 0 0\ncpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0\n"))
	f.Add([]byte("intr 1 2 3\n"))
	f.Add([]byte("cpu 18446744073709551615 1 1 1\n"))
	f.Add([]byte("cpu 18446744073709551615 0 0 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCPU(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		if c.busy > c.total {
			t.Fatalf("busy %d above total %d", c.busy, c.total)
		}
	})
}
