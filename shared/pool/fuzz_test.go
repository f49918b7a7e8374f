package pool

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseYAML: a pool file, however broken, is either refused with an
// error or validated into pools that every later step can rely on.
func FuzzParseYAML(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(configDir, "*.yaml"))
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := ParseYAML(raw)
		if err != nil {
			return
		}
		if file.Environment == "" || len(file.Pools) == 0 {
			t.Fatalf("accepted a file without environment or pools: %+v", file)
		}
		for _, p := range file.Pools {
			c := p.Capacity
			if c.Min < 0 || c.Min > c.Max || c.WarmPool < 0 || c.ScaleOutStep < 1 || len(p.Placement) == 0 || len(p.InstanceTypes) == 0 {
				t.Fatalf("accepted pool %q with capacity %+v, %d zones, %d types", p.Name, c, len(p.Placement), len(p.InstanceTypes))
			}
			_ = p.Revision()
			_ = p.ShiftSteps()
		}
	})
}
