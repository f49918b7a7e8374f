package simulation

import (
	"fmt"
	"io"
	"strings"
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
	// Goals judges each mediascale policy against the bar README.md sets
	// ("Where mediascale stands").
	Goals []Goal `json:"goals"`
}

// Goal is the bar for a mediascale policy on one trace: under-provisioning
// at most half the best peer's (BUNGEE accuracy), at no more node-hours
// than that peer, and its distance from the oracle, the physical limit.
type Goal struct {
	Policy    string  `json:"policy"`
	Under     float64 `json:"underProvisioningAccuracy"`
	NodeHours float64 `json:"nodeHours"`
	// BestPeer is the peer that under-provisions least (fewer node-hours
	// breaking a tie); the oracle is not a peer.
	BestPeer          string  `json:"bestPeer"`
	BestPeerUnder     float64 `json:"bestPeerUnderProvisioningAccuracy"`
	BestPeerNodeHours float64 `json:"bestPeerNodeHours"`
	OracleUnder       float64 `json:"oracleUnderProvisioningAccuracy"`
	// ReactiveUnder and ReactiveNodeHours are the ideal reactive
	// policy's: the least any policy that sizes the pool to the demand of
	// the moment can under-provision on the trace, and what it costs.
	ReactiveUnder     float64 `json:"idealReactiveUnderProvisioningAccuracy"`
	ReactiveNodeHours float64 `json:"idealReactiveNodeHours"`
	Met               bool    `json:"met"`
}

// Judge sets the report's goals from its results.
func Judge(results []Result) []Goal {
	var best, oracle, reactive *Result
	var ours []Result
	for i, x := range results {
		switch {
		case x.Policy == OracleName:
			oracle = &results[i]
		case x.Policy == IdealReactiveName:
			reactive = &results[i]
		case strings.HasPrefix(x.Policy, "mediascale"):
			ours = append(ours, x)
		case best == nil || x.UnderAccuracy < best.UnderAccuracy || x.UnderAccuracy == best.UnderAccuracy && x.NodeHours < best.NodeHours:
			best = &results[i]
		}
	}
	if best == nil {
		return nil
	}
	var goals []Goal
	for _, x := range ours {
		g := Goal{Policy: x.Policy, Under: x.UnderAccuracy, NodeHours: x.NodeHours,
			BestPeer: best.Policy, BestPeerUnder: best.UnderAccuracy, BestPeerNodeHours: best.NodeHours}
		if oracle != nil {
			g.OracleUnder = oracle.UnderAccuracy
		}
		if reactive != nil {
			g.ReactiveUnder, g.ReactiveNodeHours = reactive.UnderAccuracy, reactive.NodeHours
		}
		g.Met = round2(x.UnderAccuracy) <= round2(best.UnderAccuracy/2) && x.NodeHours <= best.NodeHours
		goals = append(goals, g)
	}
	return goals
}

// String says the verdict in one line.
func (g Goal) String() string {
	verdict := "NOT MET"
	if g.Met {
		verdict = "met"
	}
	line := fmt.Sprintf("goal for %s: %s: under-provisioning %.2f against %s's %.2f (at most %.3f wanted), node-hours %.1f against %.1f; the oracle under-provisions %.2f",
		g.Policy, verdict, g.Under, g.BestPeer, g.BestPeerUnder, g.BestPeerUnder/2, g.NodeHours, g.BestPeerNodeHours, g.OracleUnder)
	if g.BeyondReactive() {
		line += fmt.Sprintf("; an ideal reactive policy under-provisions %.2f at %.1f node-hours: the bar is below what sizing to the demand of the moment can reach",
			g.ReactiveUnder, g.ReactiveNodeHours)
	}
	return line
}

// BeyondReactive reports whether the goal asks for less under-provisioning
// than the ideal reactive policy achieves: then only a policy that guesses
// at demand still to come can meet it.
func (g Goal) BeyondReactive() bool {
	return g.ReactiveNodeHours > 0 && round2(g.ReactiveUnder) > round2(g.BestPeerUnder/2)
}

// Policies returns every policy the simulator compares, mediascale first,
// then the peers, the reactive bound and the oracle.
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
		NewOracle(p, m, t, false),
		NewOracle(p, m, t, true),
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
	return Report{Pool: p.Name, Trace: name, Seconds: t.Duration().Seconds(), Model: m, Results: results, Goals: Judge(results)}, nil
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
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range r.Goals {
		if _, err := fmt.Fprintln(w, g); err != nil {
			return err
		}
	}
	return nil
}
