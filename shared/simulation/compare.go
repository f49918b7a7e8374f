package simulation

import (
	"fmt"
	"io"
	"math"
	"strconv"
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
	// Shows are the shows announced for the run.
	Shows []Show `json:"shows,omitempty"`
	// Goals judges each mediascale policy against the bar README.md sets
	// ("Where mediascale stands").
	Goals []Goal `json:"goals"`
}

// Goal is the bar for a mediascale policy on one trace (README.md, "Where
// mediascale stands"): a set of checks, each a figure against its limit
// and where the limit comes from.
type Goal struct {
	Policy string `json:"policy"`
	// Kind says which bar the trace is held to: GoalCrowd, GoalFortnight
	// or GoalCalm.
	Kind   string  `json:"kind"`
	Checks []Check `json:"checks"`
	Met    bool    `json:"met"`
}

// Check is one figure of a goal against its limit.
type Check struct {
	Figure string  `json:"figure"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	// Basis says where the limit comes from ("0.75 x hpa's 0.08").
	Basis string `json:"basis"`
	Met   bool   `json:"met"`
	// Reach, for a check missed, says when no policy could meet it: the
	// bound that knows at least as much as the policy (the first-sign
	// bound for a crowd nobody announced, the oracle otherwise) misses
	// it too (floorOf).
	Reach string `json:"outOfReach,omitempty"`
}

// The kinds of goal.
const (
	// GoalCrowd is a crowd nobody announced (the flash crowd, the
	// collapse, and any trace not named below).
	GoalCrowd = "crowd nobody announced"
	// GoalFortnight is the diurnal fortnight.
	GoalFortnight = "diurnal fortnight"
	// GoalCalm is load that wanders without a crowd (sawtooth, noise).
	GoalCalm = "sawtooth and noise"
	// GoalShow is a crowd announced as a show.
	GoalShow = "announced show"
)

// GoalKind is the bar a shipped trace is held to, by its file name, or a
// show's when shows were announced.
func GoalKind(trace string, announced bool) string {
	switch {
	case announced:
		return GoalShow
	case strings.Contains(trace, "diurnal"):
		return GoalFortnight
	case strings.Contains(trace, "sawtooth"), strings.Contains(trace, "noise"):
		return GoalCalm
	}
	return GoalCrowd
}

// isPeer tells the peers from mediascale's own policies and the bounds.
func isPeer(name string) bool {
	return name != OracleName && name != FirstSignName && !strings.HasPrefix(name, "mediascale")
}

// bestPeer is the peer with the least of a figure, fewer node-hours
// breaking a tie; ok is false without peers.
func bestPeer(results []Result, fig func(Figures) float64, among func(Figures) bool) (Figures, bool) {
	var best *Figures
	for i := range results {
		x := &results[i].Figures
		if !isPeer(x.Policy) || among != nil && !among(*x) {
			continue
		}
		if best == nil || fig(*x) < fig(*best) || fig(*x) == fig(*best) && x.NodeHours < best.NodeHours {
			best = x
		}
	}
	if best == nil {
		return Figures{}, false
	}
	return *best, true
}

// Judge sets the report's goals from its results for a trace of the given
// kind.
func Judge(results []Result, kind string) []Goal {
	var oracle, firstSign *Figures
	for i := range results {
		switch results[i].Policy {
		case OracleName:
			oracle = &results[i].Figures
		case FirstSignName:
			firstSign = &results[i].Figures
		}
	}
	under := func(f Figures) float64 { return f.UnderAccuracy }
	harm := func(f Figures) float64 { return f.Harm }
	var goals []Goal
	for _, r := range results {
		x := r.Figures
		if !strings.HasPrefix(x.Policy, "mediascale") {
			continue
		}
		g := Goal{Policy: x.Policy, Kind: kind}
		add := func(figure string, value, limit float64, basis string) {
			g.Checks = append(g.Checks, Check{Figure: figure, Value: value, Limit: limit, Basis: basis, Met: value <= limit+1e-9})
		}
		halfHarm := func(note string) {
			if b, ok := bestPeer(results, harm, nil); ok {
				add("harm", x.Harm, 0.5*b.Harm, fmt.Sprintf("half of %s's %.0f%s", b.Policy, b.Harm, note))
			}
		}
		oracleBill := func(k float64) {
			if oracle != nil {
				add("node-hours", x.NodeHours, round2(k*oracle.NodeHours), fmt.Sprintf("%g x the oracle's %.1f", k, oracle.NodeHours))
			}
		}
		switch kind {
		case GoalCrowd:
			if b, ok := bestPeer(results, under, nil); ok {
				add("under-provisioning", x.UnderAccuracy, round3(0.75*b.UnderAccuracy), fmt.Sprintf("0.75 x %s's %.2f", b.Policy, b.UnderAccuracy))
			}
			if firstSign != nil {
				limit := math.Max(1.5*firstSign.UnderAccuracy, firstSign.UnderAccuracy+0.02)
				add("under-provisioning", x.UnderAccuracy, round3(limit), fmt.Sprintf("the first-sign bound's %.2f x 1.5 or + 0.02", firstSign.UnderAccuracy))
			}
			halfHarm("")
			oracleBill(1.15)
		case GoalShow:
			add("under-provisioning", x.UnderAccuracy, 0.02, "0.02")
			halfHarm(", given the same schedule")
			oracleBill(1.2)
		case GoalFortnight:
			add("under-provisioning", x.UnderAccuracy, 0, "none")
			served := func(f Figures) bool { return f.UnderAccuracy == 0 }
			if b, ok := bestPeer(results, func(f Figures) float64 { return f.NodeHours }, served); ok {
				add("node-hours", x.NodeHours, round2(1.02*b.NodeHours), fmt.Sprintf("1.02 x %s's %.1f", b.Policy, b.NodeHours))
			}
			if b, ok := bestPeer(results, func(f Figures) float64 { return f.Cut }, nil); ok {
				add("sessions cut", x.Cut, b.Cut, fmt.Sprintf("%s's %.0f", b.Policy, b.Cut))
			}
		case GoalCalm:
			scales := func(f Figures) bool { return f.Executions > 0 }
			if b, ok := bestPeer(results, func(f Figures) float64 { return f.Jitter }, scales); ok {
				add("jitter", x.Jitter, b.Jitter, fmt.Sprintf("%s's %.3f, the calmest peer that scales", b.Policy, b.Jitter))
			}
			if b, ok := bestPeer(results, harm, nil); ok {
				add("harm", x.Harm, b.Harm, fmt.Sprintf("%s's %.0f", b.Policy, b.Harm))
			}
		}
		bound, boundName := oracle, "the oracle"
		if kind == GoalCrowd && firstSign != nil {
			bound, boundName = firstSign, "the first-sign bound"
		}
		g.Met = len(g.Checks) > 0
		for i, c := range g.Checks {
			g.Met = g.Met && c.Met
			if v, says, ok := floorOf(bound, c.Figure); ok && !c.Met && v > c.Limit+1e-9 {
				g.Checks[i].Reach = fmt.Sprintf("out of reach: %s %s", boundName, says)
			}
		}
		goals = append(goals, g)
	}
	return goals
}

// floorOf is the least of a check's figure a policy could have that knows
// no more than the bound, read off the bound's figures, and how to say
// it; false for a figure the bound does not floor. A bound sizes the pool
// perfectly once it knows, so its under-provisioning floors any policy's,
// and so do its refusals (the sessions that come before the nodes that
// knowledge can launch); its cuts, node-hours and jitter floor nothing, as
// a policy may drain where it cuts and run hotter than it does.
func floorOf(f *Figures, figure string) (float64, string, bool) {
	if f == nil {
		return 0, "", false
	}
	switch figure {
	case "under-provisioning":
		return f.UnderAccuracy, "under-provisions " + num(f.UnderAccuracy), true
	case "harm":
		return f.Refused, "refuses " + num(f.Refused) + " sessions", true
	}
	return 0, "", false
}

// String says the verdict in one line, and for each check missed by how
// much.
func (g Goal) String() string {
	verdict := "NOT MET"
	if g.Met {
		verdict = "met"
	}
	parts := make([]string, 0, len(g.Checks))
	for _, c := range g.Checks {
		part := fmt.Sprintf("%s %s, at most %s (%s)", c.Figure, num(c.Value), num(c.Limit), c.Basis)
		if !c.Met {
			part += fmt.Sprintf(": %s over", num(c.Value-c.Limit))
		}
		if c.Reach != "" {
			part += " (" + c.Reach + ")"
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("goal for %s (%s): %s: %s", g.Policy, g.Kind, verdict, strings.Join(parts, "; "))
}

// num prints a figure as short as it allows: whole numbers whole, the
// rest to three places.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	return strconv.FormatFloat(round3(v), 'f', -1, 64)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// Policies returns every policy the simulator compares, mediascale first,
// then the peers, the first-sign bound and the oracle. Announced shows
// reach mediascale's controller and the peers' schedules.
func Policies(p pool.Pool, m Model, t Trace, shows ...Show) []Policy {
	target := capacity.Targets(p)[pool.MetricConnections]
	ms, fc := NewMediascale(p), NewForecasting(p, m, target)
	hpa, tt, pr, step := NewHPA(p), NewTargetTracking(p, target), NewPredictive(p, target), NewStepScaling(p)
	if len(shows) > 0 {
		for _, x := range []*Mediascale{ms, fc.Mediascale} {
			x.shows, x.lead = forController(shows), m.coldLead(p)+p.ShiftTime()
		}
		hpa.sched, tt.sched, pr.tt.sched, step.sched = shows, shows, shows, shows
	}
	return []Policy{ms, fc, hpa, tt, pr, step, NewEdge(p), NewOracle(p, m, t, true), NewOracle(p, m, t, false)}
}

// Compare runs every policy over the trace, each on its own copy of the
// pool, at once, with the shows announced (none for a crowd nobody
// announced).
func Compare(p pool.Pool, m Model, t Trace, name string, shows ...Show) (Report, error) {
	pols := Policies(p, m, t, shows...)
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
	return Report{Pool: p.Name, Trace: name, Seconds: t.Duration().Seconds(), Model: m, Results: results, Shows: shows, Goals: Judge(results, GoalKind(name, len(shows) > 0))}, nil
}

// WriteTable prints the figures, one policy per row.
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "pool %s, trace %s (%s)\n", r.Pool, r.Trace, time.Duration(r.Seconds*float64(time.Second)))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tunder acc\tover acc\tunder %\tover %\tjitter/min\thot session-min\trefused\tcut\tharm\tnode-hours\tparked hours\tpeak\tactions\ttransitions\tinvocations\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.1f\t%.1f\t%.3f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%d\t%d\t%.0f\t%.0f\t\n",
			x.Policy, x.UnderAccuracy, x.OverAccuracy, 100*x.UnderTimeShare, 100*x.OverTimeShare, x.Jitter,
			x.HotSessionMinutes, x.Refused, x.Cut, x.Harm, x.NodeHours, x.ParkedNodeHours, x.PeakNodes, x.Executions, x.Transitions, x.LambdaInvocations)
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
