package simulation

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/pool"
)

func devPool(t testing.TB, name string) pool.Pool {
	t.Helper()
	f, err := pool.LoadFile("../../infra/config/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := f.Find(name)
	if !ok {
		t.Fatalf("no pool %s", name)
	}
	return p
}

// csv builds a trace from (seconds, sessions) pairs.
func csv(pairs ...float64) string {
	var b strings.Builder
	b.WriteString("seconds,sessions\n")
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, "%g,%g\n", pairs[i], pairs[i+1])
	}
	return b.String()
}

func TestParseTrace(t *testing.T) {
	cases := []struct {
		name, in, err string
		points        int
	}{
		{"a header and two points is a trace", csv(0, 10, 60, 20), "", 2},
		{"spaces and a blank line are forgiven", "seconds, sessions\n0, 1\n\n10, 2\n", "", 2},
		{"another header is refused", "time,users\n0,1\n1,2\n", "want the header seconds,sessions", 0},
		{"time going backwards is refused", csv(0, 1, 10, 2, 5, 3), "seconds must increase", 0},
		{"negative sessions are refused", csv(0, 1, 10, -2), "sessions must be a number of at least 0", 0},
		{"not a number is refused", "seconds,sessions\n0,1\n10,NaN\n", "sessions must be", 0},
		{"a trace longer than 30 days is refused", csv(0, 1, 31*86400, 2), "seconds must be a number from 0 to 2592000", 0},
		{"one point is not a trace", csv(0, 1), "at least two points", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ParseTrace(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(tr.Points) != tc.points {
				t.Fatalf("%d points, %v", len(tr.Points), err)
			}
		})
	}
}

func TestHPADesired(t *testing.T) {
	cases := []struct {
		name           string
		current, ready int
		load, target   float64
		want           int
	}{
		{"twice the target doubles the pods", 4, 4, 800, 100, 8},
		{"within the 10 % tolerance nothing moves", 4, 4, 430, 100, 4},
		{"growth is bounded to 100 % or 4 pods per sync", 2, 2, 2000, 100, 6},
		{"unready pods count as 0 % on the way up", 4, 2, 400, 100, 4},
		{"unready pods count as 100 % on the way down", 4, 2, 100, 100, 3},
		{"half the target halves the pods", 10, 10, 500, 100, 5},
		{"an empty deployment with load gets one pod", 0, 0, 50, 100, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := HPADesired(tc.current, tc.ready, tc.load, tc.target); got != tc.want {
				t.Fatalf("HPADesired = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTargetTrackingRoundsUp(t *testing.T) {
	// AWS's example: 1.5 instances' worth of load is two instances.
	if got := TargetTrackingDesired(3, 150, 100); got != 5 {
		t.Fatalf("3 instances at 150 %% of target: desired %d, want 5 (4.5 rounded up)", got)
	}
	if got := TargetTrackingDesired(4, 50, 100); got != 2 {
		t.Fatalf("4 instances at 50 %%: desired %d, want 2", got)
	}
}

func TestATraceOneNodeServesCostsMinNodesAndNeverUnderProvisions(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	// A day of a few sessions, far below one node's target of 1200.
	var pairs []float64
	for s := 0.0; s <= 86400; s += 600 {
		pairs = append(pairs, s, 50+float64(int(s)%7))
	}
	tr, err := ParseTrace(strings.NewReader(csv(pairs...)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compare(p, DefaultModel(), tr, "quiet day")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.Results {
		// The pool starts at min, serving: nothing is ever short.
		if x.UnderAccuracy != 0 || x.UnderTimeShare != 0 || x.HotSessionMinutes != 0 || x.Refused != 0 || x.Cut != 0 {
			t.Errorf("%s: under %.2f (%.4f of the time), hot %.0f, refused %.0f, cut %.0f; want none", x.Policy, x.UnderAccuracy, x.UnderTimeShare, x.HotSessionMinutes, x.Refused, x.Cut)
		}
		if x.NodeHours != 24*float64(p.Capacity.Min) || x.PeakNodes != p.Capacity.Min {
			t.Errorf("%s: %.2f node-hours, peak %d; want one node for the day", x.Policy, x.NodeHours, x.PeakNodes)
		}
	}
}

func TestAFlashCrowdIsServedSoonerByTheControllerThanByTheFixedStep(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	// From idle to 5,000 sessions in two minutes, an hour of show, then
	// the audience halves in five minutes.
	tr, err := ParseTrace(strings.NewReader(csv(0, 200, 600, 200, 720, 5000, 4200, 5000, 4500, 2500, 7200, 2500)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compare(p, DefaultModel(), tr, "flash crowd")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Figures{}
	for _, x := range r.Results {
		byName[x.Policy] = x.Figures
	}
	ms, edge, oracle, reactive := byName["mediascale"], byName["edge-fixed-step"], byName["oracle"], byName["ideal-reactive"]
	if ms.UnderAccuracy >= edge.UnderAccuracy {
		t.Errorf("mediascale under-provisioned %.2f node units, the fixed step %.2f: the controller should close the gap faster", ms.UnderAccuracy, edge.UnderAccuracy)
	}
	if oracle.UnderAccuracy > ms.UnderAccuracy {
		t.Errorf("the oracle (%.2f) did worse than mediascale (%.2f): it cannot", oracle.UnderAccuracy, ms.UnderAccuracy)
	}
	// Sizing to the demand of the moment, at once, leaves the launch lead
	// uncovered: worse than foresight, better than any peer that sizes to
	// the present through alarms or a sync period.
	for _, peer := range []string{"hpa", "target-tracking", "step-scaling"} {
		if x := byName[peer]; reactive.UnderAccuracy > x.UnderAccuracy {
			t.Errorf("the ideal reactive policy (%.2f) did worse than %s (%.2f)", reactive.UnderAccuracy, peer, x.UnderAccuracy)
		}
	}
	if reactive.UnderAccuracy <= oracle.UnderAccuracy {
		t.Errorf("the ideal reactive policy (%.2f) did as well as the oracle (%.2f): the launch lead should cost it", reactive.UnderAccuracy, oracle.UnderAccuracy)
	}
	if testing.Verbose() {
		_ = r.WriteTable(os.Stdout)
	}
}

func TestTheSimulationIsRepeatable(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	m := DefaultModel()
	m.CapacityFailureRate = 0.3
	tr, _ := ParseTrace(strings.NewReader(csv(0, 100, 300, 8000, 3600, 8000)))
	a, _ := Run(p, m, tr, NewMediascale(p))
	b, _ := Run(p, m, tr, NewMediascale(p))
	if a.Figures != b.Figures {
		t.Fatalf("two runs with seed %d differ:\n%+v\n%+v", m.Seed, a.Figures, b.Figures)
	}
}

func TestForecastsNeedADayOfHistoryAndRaiseTheFloorAheadOfARecurringPeak(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	// Three days of an evening show: idle, then 5,000 sessions at 20:00
	// within two minutes, for an hour.
	var pairs []float64
	for day := 0; day < 3; day++ {
		base := float64(day * 86400)
		pairs = append(pairs, base, 200, base+20*3600, 200, base+20*3600+120, 5000, base+21*3600, 5000, base+21*3600+300, 200)
	}
	pairs = append(pairs, 3*86400, 200)
	tr, err := ParseTrace(strings.NewReader(csv(pairs...)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Figures{}
	r, err := Compare(p, DefaultModel(), tr, "three evenings")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.Results {
		byName[x.Policy] = x.Figures
	}
	plain, ahead := byName["mediascale"], byName["mediascale+forecast"]
	t.Logf("session-minutes above target: %.0f without the forecast, %.0f with it", plain.HotSessionMinutes, ahead.HotSessionMinutes)
	if ahead.HotSessionMinutes >= plain.HotSessionMinutes/2 {
		t.Errorf("with its forecast mediascale left %.0f session-minutes above target, without %.0f: the second and third evenings should be ready", ahead.HotSessionMinutes, plain.HotSessionMinutes)
	}
	// On a trace shorter than a day the forecasts have nothing to learn
	// from and change nothing.
	short, _ := ParseTrace(strings.NewReader(csv(0, 200, 600, 5000, 7200, 5000)))
	a, _ := Run(p, DefaultModel(), short, NewTargetTracking(p, 1200))
	b, _ := Run(p, DefaultModel(), short, NewPredictive(p, 1200))
	if a.UnderAccuracy != b.UnderAccuracy || a.NodeHours != b.NodeHours {
		t.Errorf("predictive scaling acted on under a day of history: %+v vs %+v", b.Figures, a.Figures)
	}
}

func TestJudge(t *testing.T) {
	res := func(policy string, under, hours float64) Result {
		return Result{Figures: Figures{Policy: policy, UnderAccuracy: under, NodeHours: hours}}
	}
	cases := []struct {
		name    string
		results []Result
		peer    string
		met     bool
		beyond  bool
	}{
		{"half the best peer's under-provisioning at fewer node-hours meets the goal",
			[]Result{res("mediascale", 0.04, 30), res("hpa", 0.09, 32), res("step-scaling", 0.14, 120), res("oracle", 0, 37)}, "hpa", true, false},
		{"as good as the best peer is not enough",
			[]Result{res("mediascale", 0.09, 30), res("hpa", 0.09, 32), res("oracle", 0, 37)}, "hpa", false, false},
		{"half as much at more node-hours is not enough",
			[]Result{res("mediascale", 0.04, 33), res("hpa", 0.09, 32), res("oracle", 0, 37)}, "hpa", false, false},
		{"a tie in under-provisioning goes to the cheaper peer, and nothing beats zero but zero",
			[]Result{res("mediascale", 0, 1420), res("target-tracking", 0, 1432), res("hpa", 0, 1420), res("oracle", 0, 1457)}, "hpa", true, false},
		{"the oracle is never the peer to beat",
			[]Result{res("mediascale", 0.04, 30), res("oracle", 0, 37), res("hpa", 0.09, 32)}, "hpa", true, false},
		{"the ideal reactive policy is not a peer either, and a bar below it is flagged",
			[]Result{res("mediascale", 0.09, 37), res("hpa", 0.08, 32), res("ideal-reactive", 0.07, 36), res("oracle", 0, 37)}, "hpa", false, true},
		{"a bar the ideal reactive policy clears is not flagged",
			[]Result{res("mediascale", 0.09, 37), res("hpa", 0.08, 32), res("ideal-reactive", 0.03, 36), res("oracle", 0, 37)}, "hpa", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			goals := Judge(tc.results)
			if len(goals) != 1 || goals[0].BestPeer != tc.peer || goals[0].Met != tc.met || goals[0].BeyondReactive() != tc.beyond {
				t.Fatalf("goals %+v, want best peer %s, met %v, beyond the ideal reactive policy %v", goals, tc.peer, tc.met, tc.beyond)
			}
		})
	}
}

func TestTheShippedGoldenImageModelShortensOnlyTheDeploy(t *testing.T) {
	f, err := os.Open("../../testevents/traces/models/golden-image.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := LoadModel(f)
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultModel()
	if m.Deploy.D() != 10*time.Second {
		t.Fatalf("deploy %s", m.Deploy)
	}
	m.Deploy = def.Deploy
	if m != def {
		t.Fatalf("the golden-image model changes more than the deploy: %+v", m)
	}
	p := pool.Pool{Probe: pool.Probe{Interval: pool.Duration(10 * time.Second)}}
	cold, warm := def.Leads(p)
	if cold != def.coldLead(p) || warm != def.warmLead(p) {
		t.Fatal("Leads differs from the lead times the simulation uses")
	}
}
