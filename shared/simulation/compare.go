package simulation

import (
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// Report is every policy's run over one trace.
type Report struct {
	Pool    string   `json:"pool"`
	Trace   string   `json:"trace"`
	Seconds float64  `json:"traceSeconds"`
	Model   Model    `json:"model"`
	Results []Result `json:"results"`
}

// Policies returns every policy the simulator compares, mediascale first
// and the oracle last.
func Policies(p pool.Pool, m Model, t Trace) []Policy {
	target := capacity.Targets(p)[pool.MetricConnections]
	return []Policy{
		NewMediascale(p),
		NewForecasting(p, m, target),
		NewHPA(p),
		NewTargetTracking(p, target),
		NewPredictive(p, target),
		NewStepScaling(p),
		NewEdge(p),
		NewOracle(p, m, t),
	}
}

// Compare runs every policy over the trace, each on its own copy of the
// pool, at once.
func Compare(p pool.Pool, m Model, t Trace, name string) (Report, error) {
	pols := Policies(p, m, t)
	results := make([]Result, len(pols))
	errs := make([]error, len(pols))
	var wg sync.WaitGroup
	for i, pol := range pols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Run(p, m, t, pol)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Report{}, err
		}
	}
	return Report{Pool: p.Name, Trace: name, Seconds: t.Duration().Seconds(), Model: m, Results: results}, nil
}

// WriteTable prints the figures, one policy per row.
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "pool %s, trace %s (%s)\n", r.Pool, r.Trace, time.Duration(r.Seconds*float64(time.Second)))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tunder acc\tover acc\tunder %\tover %\tjitter/min\thot session-min\trefused\tcut\tnode-hours\tpeak\tactions\ttransitions\tinvocations\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.1f\t%.1f\t%.3f\t%.0f\t%.0f\t%.0f\t%.1f\t%d\t%d\t%.0f\t%.0f\t\n",
			x.Policy, x.UnderAccuracy, x.OverAccuracy, 100*x.UnderTimeShare, 100*x.OverTimeShare, x.Jitter,
			x.HotSessionMinutes, x.Refused, x.Cut, x.NodeHours, x.PeakNodes, x.Executions, x.Transitions, x.LambdaInvocations)
	}
	return tw.Flush()
}
