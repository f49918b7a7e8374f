package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// writeCrowd writes the crowd's summary as JSON and its plot as SVG: the
// sessions, and the serving and in-flight nodes' capacity in sessions at
// the controller's target, over time.
func writeCrowd(prefix string, p pool.Pool, s CrowdSummary) error {
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return err
	}
	doc, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".json", doc, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".svg", []byte(crowdSVG(p, s)), 0o644); err != nil {
		return err
	}
	fmt.Printf("crowd: timeline %s.json, plot %s.svg\n", prefix, prefix)
	return nil
}

func crowdSVG(p pool.Pool, s CrowdSummary) string {
	const w, h, left, bottom, top, right = 900.0, 420.0, 60.0, 50.0, 40.0, 170.0
	perNode := capacity.Targets(p)[pool.MetricConnections]
	maxT, maxY := 1.0, 1.0
	for _, pt := range s.Timeline {
		maxT = max(maxT, pt.Seconds)
		maxY = max(maxY, float64(pt.Sessions), float64(pt.Serving+pt.InFlight)*perNode)
	}
	maxY *= 1.1
	x := func(t float64) float64 { return left + (w-left-right)*t/maxT }
	y := func(v float64) float64 { return h - bottom - (h-bottom-top)*v/maxY }
	line := func(color string, value func(CrowdPoint) float64, dash string) string {
		var pts []string
		for _, pt := range s.Timeline {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt.Seconds), y(value(pt))))
		}
		return fmt.Sprintf(`<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`, color, dash, strings.Join(pts, " "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`)
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15">%s: flash crowd of %d sessions; capacity at %.1f sessions per node</text>`, left, p.Name, s.Peak, perNode)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		t, v := maxT*float64(i)/5, maxY*float64(i)/5
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%.0fs</text>`, x(t), h-bottom+18, t)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`, left-6, y(v)+4, v)
	}
	b.WriteString(line("#d62728", func(pt CrowdPoint) float64 { return float64(pt.Sessions) }, ""))
	b.WriteString(line("#1f77b4", func(pt CrowdPoint) float64 { return float64(pt.Serving) * perNode }, ""))
	b.WriteString(line("#1f77b4", func(pt CrowdPoint) float64 { return float64(pt.Serving+pt.InFlight) * perNode }, "6,4"))
	for i, l := range []struct{ color, dash, text string }{
		{"#d62728", "", "sessions"}, {"#1f77b4", "", "ACTIVE capacity"}, {"#1f77b4", "6,4", "with nodes in flight"},
	} {
		ly := top + 20 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`, w-right+10, ly, w-right+40, ly, l.color, l.dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`, w-right+46, ly+4, l.text)
	}
	b.WriteString(`</svg>`)
	return b.String()
}
