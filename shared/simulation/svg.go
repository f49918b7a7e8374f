package simulation

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

const (
	plotW, plotH = 900.0, 260.0
	margin       = 50.0
)

// WritePlot draws one policy's serving capacity against demand, both in
// node units, over the trace: demand grey, supply blue.
func (r Report) WritePlot(w io.Writer, res Result) error {
	top := 1.0
	for _, p := range res.Series {
		top = math.Max(top, math.Max(p.Demand, p.Supply))
	}
	end := math.Max(r.Seconds, 1)
	x := func(s float64) float64 { return margin + s/end*(plotW-2*margin) }
	y := func(v float64) float64 { return plotH - margin - v/top*(plotH-2*margin) }
	line := func(get func(SeriesPoint) float64) string {
		var b strings.Builder
		for i, p := range res.Series {
			if i > 0 {
				// A step chart: capacity holds until it changes.
				fmt.Fprintf(&b, "%.1f,%.1f ", x(p.At), y(get(res.Series[i-1])))
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.At), y(get(p)))
		}
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.0f" y="20">%s: %s on %s (node units; demand grey, serving capacity blue)</text>`+"\n", margin, html.EscapeString(res.Policy), html.EscapeString(r.Trace), html.EscapeString(r.Pool))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", margin, plotH-margin, plotW-margin, plotH-margin)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", margin, margin, margin, plotH-margin)
	fmt.Fprintf(&b, `<text x="5" y="%.0f">%.0f</text><text x="5" y="%.0f">0</text>`+"\n", margin+4, top, plotH-margin)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", plotW-margin-60, plotH-margin+20, hours(end))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#999" stroke-width="1.5" points="%s"/>`+"\n", line(func(p SeriesPoint) float64 { return p.Demand }))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="%s"/>`+"\n", line(func(p SeriesPoint) float64 { return p.Supply }))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteBars draws the headline figures of every policy side by side, each
// figure scaled to its largest value.
func (r Report) WriteBars(w io.Writer) error {
	figs := []struct {
		name string
		get  func(Figures) float64
	}{
		{"under-provisioning accuracy", func(f Figures) float64 { return f.UnderAccuracy }},
		{"over-provisioning accuracy", func(f Figures) float64 { return f.OverAccuracy }},
		{"session-minutes above target", func(f Figures) float64 { return f.HotSessionMinutes }},
		{"sessions refused", func(f Figures) float64 { return f.Refused }},
		{"sessions cut at scale-in", func(f Figures) float64 { return f.Cut }},
		{"node-hours", func(f Figures) float64 { return f.NodeHours }},
	}
	colors := []string{"#1f5fbf", "#e07b00", "#2a9d4b", "#c62d42", "#7b4fb8", "#666"}
	rowH := 22.0 * float64(len(r.Results))
	h := 40 + float64(len(figs))*(rowH+30)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", plotW, h)
	fmt.Fprintf(&b, `<text x="10" y="20">%s on %s: every policy's figures (longer is worse, except none)</text>`+"\n", html.EscapeString(r.Trace), html.EscapeString(r.Pool))
	top := 40.0
	for _, fg := range figs {
		most := 0.0
		for _, res := range r.Results {
			most = math.Max(most, fg.get(res.Figures))
		}
		fmt.Fprintf(&b, `<text x="10" y="%.0f" font-weight="bold">%s</text>`+"\n", top+12, fg.name)
		for i, res := range r.Results {
			v := fg.get(res.Figures)
			width := 0.0
			if most > 0 {
				width = v / most * (plotW - 300)
			}
			yy := top + 18 + float64(i)*22
			fmt.Fprintf(&b, `<text x="20" y="%.0f">%s</text><rect x="160" y="%.0f" width="%.1f" height="16" fill="%s"/><text x="%.0f" y="%.0f">%g</text>`+"\n",
				yy+12, html.EscapeString(res.Policy), yy, width, colors[i%len(colors)], 165+width, yy+12, v)
		}
		top += rowH + 30
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func hours(s float64) string {
	if s >= 2*86400 {
		return fmt.Sprintf("%.0f days", s/86400)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}
