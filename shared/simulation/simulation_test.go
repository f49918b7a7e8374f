package simulation

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/alarm"
	"github.com/mediascale/mediascale/shared/capacity"
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

// The replica calculator's own cases (kubernetes/kubernetes,
// pkg/controller/podautoscaler/replica_calculator_test.go: ScaleUpCM,
// ScaleDownCM, ToleranceCM, MissingMetrics, ScaleDownIgnoresUnreadyPods,
// ScaleUpCMUnreadyLessScale), as plain per-pod metrics, and cases of ours
// from the same rules.
func TestHPAReplicas(t *testing.T) {
	cases := []struct {
		name    string
		current int
		pods    HPAPods
		target  float64
		want    int
		ok      bool
	}{
		{"three pods averaging 20000 against 15000 scale up to four", 3, HPAPods{Metrics: []float64{20000, 10000, 30000}}, 15000, 4, true},
		{"five pods at 12000 against 20000 scale down to three", 5, HPAPods{Metrics: []float64{12000, 12000, 12000, 12000, 12000}}, 20000, 3, true},
		{"an average 3 % above the target is within the tolerance", 3, HPAPods{Metrics: []float64{20000, 21000, 21000}}, 20000, 3, true},
		{"missing metrics on a scale-down count as the target", 4, HPAPods{Metrics: []float64{400, 95}, Missing: 2}, 1000, 3, true},
		{"missing metrics on a scale-up count as zero", 4, HPAPods{Metrics: []float64{3000, 3000}, Missing: 2}, 1000, 6, true},
		{"pending pods are set aside on a scale-down", 5, HPAPods{Metrics: []float64{100, 300, 500}, Pending: 2}, 500, 2, true},
		{"pending pods count as zero on a scale-up", 3, HPAPods{Metrics: []float64{50000, 10000}, Pending: 1}, 15000, 4, true},
		{"pending pods that would turn a scale-up into a scale-down hold the count", 3, HPAPods{Metrics: []float64{20000}, Pending: 2}, 15000, 3, true},
		{"no ready pod with a metric leaves the scale alone", 2, HPAPods{Pending: 2}, 1000, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := HPAReplicas(tc.current, tc.pods, tc.target, HPATolerance)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("HPAReplicas = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestHPAStabilization(t *testing.T) {
	now := Epoch.Add(time.Hour)
	window := []timedRec{{now.Add(-290 * time.Second), 9}, {now.Add(-100 * time.Second), 7}}
	cases := []struct {
		name         string
		window       []timedRec
		current, raw int
		want         int
	}{
		{"a scale-up takes the raw recommendation at once", window, 6, 12, 12},
		{"a scale-down takes the highest raw recommendation of five minutes", window, 10, 4, 9},
		{"a scale-down never goes above the current count", window, 8, 4, 8},
		{"recommendations older than five minutes are forgotten", []timedRec{{now.Add(-301 * time.Second), 9}}, 10, 4, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := HPAStabilize(tc.window, tc.current, tc.raw, now); got != tc.want {
				t.Fatalf("HPAStabilize = %d, want %d", got, tc.want)
			}
		})
	}
}

// HPA records the raw recommendation, not the rate-limited one: after a
// crowd asks for far more than 100 % a sync, the window remembers what
// the crowd asked for.
func TestHPARecordsTheRawRecommendationBeforeTheRateLimit(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	p.Capacity.Min, p.Capacity.Max, p.Capacity.WarmPool = 2, 100, 0
	f := newCluster(p, DefaultModel(), NewHPA(p), 2000, 300)
	for i := 0; i < 2; i++ {
		f.nodes = append(f.nodes, &node{id: i + 1, phase: active, weight: 1, route: 1, sessions: 2000})
	}
	h := NewHPA(p)
	h.Step(f, Epoch)
	if current, _ := f.capacity(); current != 6 {
		t.Fatalf("after one sync %d pods, want 6 (2 + 4, the rate limit)", current)
	}
	if len(h.recs) != 1 || h.recs[0].desired != 14 {
		t.Fatalf("window %+v, want the raw recommendation ceil(2 x 2000 / 300) = 14", h.recs)
	}
}

func TestTargetTrackingCountsWarmingInstancesAsCurrentCapacity(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	p.Capacity.Min, p.Capacity.Max, p.Capacity.WarmPool = 1, 100, 0
	tt := NewTargetTracking(p, 1200)
	f := newCluster(p, DefaultModel(), tt, 2000, 1200)
	f.now = time.Hour
	// Four settled instances at 1.5 times the target and two launched a
	// minute ago for the same breach: target tracking asks for
	// ceil(4 x 1.5) = 6, which the group already has.
	for i := 0; i < 4; i++ {
		f.nodes = append(f.nodes, &node{id: i + 1, phase: active, weight: 1, route: 1, sessions: 1800})
	}
	f.launch(2, 0)
	tt.high.def.State = alarm.Alarm
	tt.high.next, tt.low.next = Epoch.Add(24*time.Hour), Epoch.Add(24*time.Hour)
	tt.Step(f, Epoch.Add(time.Hour))
	if current, _ := f.capacity(); current != 6 {
		t.Fatalf("%d instances after a repeated breach, want 6: warming instances count as current capacity", current)
	}
	// A larger breach still asks for more.
	for _, n := range f.nodes[:4] {
		n.sessions = 2000
	}
	tt.next = time.Time{}
	tt.Step(f, Epoch.Add(time.Hour+time.Minute))
	if current, _ := f.capacity(); current != 7 {
		t.Fatalf("%d instances, want ceil(4 x 2000 / 1200) = 7", current)
	}
}

func TestStepScalingAddsOneStepPerWarmup(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	p.Capacity.Min, p.Capacity.Max, p.Capacity.WarmPool, p.Capacity.ScaleOutStep = 1, 100, 0, 2
	s := NewStepScaling(p)
	f := newCluster(p, DefaultModel(), s, 2000, 1200)
	f.now = time.Hour
	for i := 0; i < 4; i++ {
		f.nodes = append(f.nodes, &node{id: i + 1, phase: active, weight: 1, route: 1, sessions: 1800})
	}
	s.out.def.State = alarm.Alarm
	s.out.next, s.in.next = Epoch.Add(24*time.Hour), Epoch.Add(24*time.Hour)
	for i := 0; i < 3; i++ {
		s.next = time.Time{}
		s.Step(f, Epoch.Add(time.Hour+time.Duration(i)*time.Minute))
	}
	if current, _ := f.capacity(); current != 6 {
		t.Fatalf("%d instances after three minutes in ALARM, want 6: the same step while the first two warm up adds nothing", current)
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
	ms, edge, oracle, first := byName["mediascale"], byName["edge-fixed-step"], byName["oracle"], byName["first-sign"]
	if ms.UnderAccuracy >= edge.UnderAccuracy {
		t.Errorf("mediascale under-provisioned %.2f node units, the fixed step %.2f: the controller should close the gap faster", ms.UnderAccuracy, edge.UnderAccuracy)
	}
	// Knowing everything from the crowd's first sign leaves the launch
	// lead uncovered: worse than foresight, better than any policy that
	// must see the crowd grow through alarms or a sync period.
	for _, name := range []string{"mediascale", "hpa", "target-tracking", "step-scaling"} {
		if x := byName[name]; first.UnderAccuracy > x.UnderAccuracy || oracle.UnderAccuracy > x.UnderAccuracy {
			t.Errorf("%s (%.2f) did better than the first-sign bound (%.2f) or the oracle (%.2f): they are bounds", name, x.UnderAccuracy, first.UnderAccuracy, oracle.UnderAccuracy)
		}
	}
	if first.UnderAccuracy <= oracle.UnderAccuracy {
		t.Errorf("the first-sign bound (%.2f) did as well as the oracle (%.2f): the launch lead should cost it", first.UnderAccuracy, oracle.UnderAccuracy)
	}
	for _, x := range r.Results {
		if x.Harm != x.Refused+x.Cut && math.Abs(x.Harm-x.Refused-x.Cut) > 1 {
			t.Errorf("%s: harm %.0f is not refused %.0f plus cut %.0f", x.Policy, x.Harm, x.Refused, x.Cut)
		}
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
	t.Logf("without the forecast %+v", plain)
	t.Logf("with the forecast %+v", ahead)
	if ahead.Refused >= plain.Refused/2 {
		t.Errorf("with its forecast mediascale refused %.0f sessions, without %.0f: the second and third evenings should be ready", ahead.Refused, plain.Refused)
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
	res := func(policy string, under, hours, harm, cut, jitter float64) Result {
		return Result{Figures: Figures{Policy: policy, UnderAccuracy: under, NodeHours: hours, Harm: harm, Cut: cut, Jitter: jitter, Executions: 3}}
	}
	crowd := []Result{res("hpa", 0.08, 32, 8000, 3000, 0), res("step-scaling", 0.13, 40, 7000, 400, 0), res("first-sign", 0.04, 36, 2400, 1300, 0), res("oracle", 0, 37, 1300, 1300, 0)}
	cases := []struct {
		name    string
		kind    string
		results []Result
		met     bool
		missed  []string
	}{
		{"a crowd: three quarters of the best peer's under-provisioning, near the first sign, half the harm, near the oracle's bill meets the goal",
			GoalCrowd, append([]Result{res("mediascale", 0.05, 40, 3400, 0, 0)}, crowd...), true, nil},
		{"a crowd: the best peer's own under-provisioning is not enough",
			GoalCrowd, []Result{res("mediascale", 0.07, 40, 3400, 0, 0), res("hpa", 0.08, 32, 8000, 3000, 0), res("first-sign", 0.05, 36, 2400, 1300, 0), res("oracle", 0, 37, 1300, 1300, 0)}, false, []string{"under-provisioning"}},
		{"a crowd: the harm bar is half the least harmful peer's, not the least under-provisioned one's",
			GoalCrowd, append([]Result{res("mediascale", 0.05, 40, 3600, 0, 0)}, crowd...), false, []string{"harm"}},
		{"a crowd: far from the first-sign bound is not enough when every peer is farther",
			GoalCrowd, append([]Result{res("mediascale", 0.05, 40, 1000, 0, 0)}, res("hpa", 0.20, 32, 8000, 0, 0), res("first-sign", 0.01, 36, 2400, 0, 0), res("oracle", 0, 37, 1300, 0, 0)), false, []string{"under-provisioning"}},
		{"a crowd: more than 1.15 times the oracle's node-hours is too dear",
			GoalCrowd, append([]Result{res("mediascale", 0.05, 43, 3400, 0, 0)}, crowd...), false, []string{"node-hours"}},
		{"the fortnight: no under-provisioning, within 2 % of the cheapest peer that kept up, no more cuts than the fewest",
			GoalFortnight, []Result{res("mediascale", 0, 1440, 0, 100, 0), res("hpa", 0, 1420, 0, 3000, 0), res("step-scaling", 0.01, 1300, 0, 200, 0)}, true, nil},
		{"the fortnight: a cheaper peer that under-provisions sets no bar, but its few cuts do",
			GoalFortnight, []Result{res("mediascale", 0, 1440, 0, 300, 0), res("hpa", 0, 1420, 0, 3000, 0), res("step-scaling", 0.01, 1300, 0, 200, 0)}, false, []string{"sessions cut"}},
		{"sawtooth: no more jitter than the calmest peer that scales, no more harm than the least",
			GoalCalm, []Result{res("mediascale", 0, 10, 5, 0, -0.05), res("hpa", 0, 10, 5, 0, 0.02), res("target-tracking", 0, 10, 50, 0, -0.04)}, true, nil},
		{"sawtooth: jitter above the calmest peer's misses",
			GoalCalm, []Result{res("mediascale", 0, 10, 5, 0, 0.01), res("hpa", 0, 10, 5, 0, 0.02), res("target-tracking", 0, 10, 50, 0, -0.04)}, false, []string{"jitter"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			goals := Judge(tc.results, tc.kind)
			if len(goals) != 1 || goals[0].Met != tc.met {
				t.Fatalf("goals %+v, want met %v", goals, tc.met)
			}
			var missed []string
			for _, c := range goals[0].Checks {
				if !c.Met {
					missed = append(missed, c.Figure)
				}
			}
			if strings.Join(missed, ",") != strings.Join(tc.missed, ",") {
				t.Fatalf("missed %v, want %v: %s", missed, tc.missed, goals[0])
			}
			if !tc.met && !strings.Contains(goals[0].String(), " over") {
				t.Fatalf("a missed goal says by how much: %s", goals[0])
			}
		})
	}
}

func TestAMissedCheckTheBoundMissesTooIsOutOfReach(t *testing.T) {
	res := func(policy string, under, hours, refused, cut float64) Result {
		return Result{Figures: Figures{Policy: policy, UnderAccuracy: under, NodeHours: hours, Refused: refused, Cut: cut, Harm: refused + cut, Executions: 3}}
	}
	// Half of HPA's harm is 3000; the first-sign bound, which sizes
	// perfectly from the crowd's first sign on, refuses 3200 sessions
	// before its nodes come. Its node-hours (45) floor nothing.
	results := []Result{res("mediascale", 0.05, 44, 3800, 0), res("hpa", 0.08, 32, 4000, 2000), res("first-sign", 0.04, 45, 3200, 300), res("oracle", 0, 37, 0, 0)}
	g := Judge(results, GoalCrowd)[0]
	for _, c := range g.Checks {
		switch {
		case c.Figure == "harm" && c.Reach != "out of reach: the first-sign bound refuses 3200 sessions":
			t.Fatalf("harm beyond the first-sign bound's reach: %+v", c)
		case c.Figure != "harm" && c.Reach != "":
			t.Fatalf("%s is within reach: %+v", c.Figure, c)
		}
	}
	if !strings.Contains(g.String(), "(out of reach: the first-sign bound refuses 3200 sessions)") {
		t.Fatalf("the goal line does not say it: %s", g)
	}
	// The bound's cuts are no floor: a policy that drains where it cuts
	// has none.
	results[2] = res("first-sign", 0.04, 45, 1000, 2500)
	if g := Judge(results, GoalCrowd)[0]; strings.Contains(g.String(), "out of reach") {
		t.Fatalf("the bound's cuts made harm out of reach: %s", g)
	}
	// With the show announced the oracle is the bound, and it harms none.
	if g := Judge(results, GoalShow)[0]; strings.Contains(g.String(), "out of reach") {
		t.Fatalf("an announced show's goal is within the oracle's reach: %s", g)
	}
}

func TestGoalKindByTraceName(t *testing.T) {
	for trace, want := range map[string]string{"flash-crowd.csv": GoalCrowd, "collapse.csv": GoalCrowd, "diurnal-14d.csv": GoalFortnight,
		"sawtooth.csv": GoalCalm, "noise.csv": GoalCalm, "my-show.csv": GoalCrowd} {
		if got := GoalKind(trace, false); got != want {
			t.Errorf("GoalKind(%s) = %s, want %s", trace, got, want)
		}
	}
	if got := GoalKind("diurnal-14d.csv", true); got != GoalShow {
		t.Errorf("with shows announced the goal is %s, want %s", got, GoalShow)
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

// newTestCluster is a pool of serving nodes with the given sessions, each
// named in every resolver's answer.
func newTestCluster(t *testing.T, p pool.Pool, pol Policy, sessions ...float64) *cluster {
	t.Helper()
	f := newCluster(p, DefaultModel(), pol, FullNode(p), capacity.Targets(p)[pool.MetricConnections])
	for _, s := range sessions {
		f.nextID++
		f.nodes = append(f.nodes, &node{id: f.nextID, phase: active, weight: 1, route: 1, sessions: s, activeAt: -Warmup})
	}
	for range f.answers {
		f.resolve()
	}
	return f
}

func TestNewSessionsFollowTheWeightsResolversHold(t *testing.T) {
	route53 := devPool(t, "live-rtmp-use1")
	lb := route53
	lb.Traffic.Mode, lb.Traffic.Route53 = pool.TrafficNLB, nil
	cases := []struct {
		name  string
		p     pool.Pool
		steps []float64
	}{
		// TTL 30 s at 10 s steps: the new node's half of the answers
		// reaches a third of the resolvers each step.
		{"in a Route53 pool a new node's share reaches new sessions as cached answers expire", route53, []float64{100, 200, 300, 300}},
		{"behind a load balancer a new node takes its share at once", lb, []float64{300, 300, 300, 300}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestCluster(t, tc.p, NewHPA(tc.p), 0)
			f.nextID++
			fresh := &node{id: f.nextID, phase: active, weight: 1, route: 1}
			f.nodes = append(f.nodes, fresh)
			for i, want := range tc.steps {
				// 600 new sessions a step, and none ever ends.
				f.demand = f.sessions() + 600
				before := fresh.sessions
				f.arrive()
				if got := fresh.sessions - before; math.Abs(got-want) > 1e-6 {
					t.Fatalf("step %d: the new node took %.1f of 600 new sessions, want %.0f", i, got, want)
				}
			}
		})
	}
}

func TestANodeThatJoinsTakesOnlyNewSessions(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	p.Traffic.Mode, p.Traffic.Route53 = pool.TrafficNLB, nil
	f := newTestCluster(t, p, NewHPA(p), 1500, 1500)
	f.nextID++
	fresh := &node{id: f.nextID, phase: active, weight: 1, route: 1}
	f.nodes = append(f.nodes, fresh)
	f.demand = 3000
	f.arrive()
	if fresh.sessions != 0 || f.nodes[0].sessions != 1500 {
		t.Fatalf("with no new sessions the new node has %.0f and an old one %.0f: sessions never move", fresh.sessions, f.nodes[0].sessions)
	}
	// The audience halves: every node loses alike.
	f.demand = 1500
	f.arrive()
	if f.nodes[0].sessions != 750 {
		t.Fatalf("an old node kept %.0f of 1500 when the audience halved, want 750", f.nodes[0].sessions)
	}
}

func TestSessionsSentToAFullNodeAreRefused(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	p.Traffic.Mode, p.Traffic.Route53 = pool.TrafficNLB, nil
	full := FullNode(p)
	f := newTestCluster(t, p, NewHPA(p), full, 0)
	f.demand = full + 1000
	f.arrive()
	f.account(10 * time.Second)
	// Half the new sessions go to the full node and are refused, though
	// the other has room: a weighted answer does not know who is full.
	if got := f.nodes[1].sessions; got != 500 {
		t.Fatalf("the empty node took %.0f of 1000, want its half", got)
	}
	if f.fig.refused != 500 {
		t.Fatalf("refused %.0f, want the 500 sent to the full node", f.fig.refused)
	}
}

func TestASaturatedPoolsNewNodeTakesItsFullShareAtOnce(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	unit := p.Alarms.ScaleOut.ConnectionsPerNode
	cases := []struct {
		name     string
		sessions []float64
		weight   float64
		bake     time.Duration
	}{
		{"every ACTIVE node at its scale-out threshold: full weight and one pressure bake", []float64{unit + 50, unit + 100}, 1, p.Traffic.PressureBakeOrDefault()},
		{"one ACTIVE node below it: the pool's first step, baked as pressure allows", []float64{unit + 400, unit - 100}, float64(p.ShiftSteps()[0].Percent) / 100, p.Traffic.PressureBakeOrDefault()},
		{"no pressure at all: the first step and its own bake", []float64{unit / 2, unit / 2}, float64(p.ShiftSteps()[0].Percent) / 100, p.ShiftSteps()[0].Bake.D()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ms := NewMediascale(p)
			f := newTestCluster(t, p, ms, tc.sessions...)
			f.launch(1, 1)
			n := f.nodes[len(f.nodes)-1]
			f.advance(n.inAt, 10*time.Second)
			if n.phase != shifting || n.weight != tc.weight || n.stepUntil-n.inAt != tc.bake {
				t.Fatalf("new node %v at weight %.2f baking %s, want SHIFTING at %.2f for %s", n.phase, n.weight, n.stepUntil-n.inAt, tc.weight, tc.bake)
			}
			f.advance(n.stepUntil, 10*time.Second)
			if tc.weight == 1 && n.phase != active {
				t.Fatalf("after its one bake the node is %v, want ACTIVE", n.phase)
			}
		})
	}
}

func TestParseShows(t *testing.T) {
	cases := []struct {
		name, in, err string
	}{
		{"a show with its time, peak and ramp is read", "shows:\n  - name: final\n    at: 10m\n    peak: 15000\n    ramp: 2m\n", ""},
		{"an unknown field is refused", "shows:\n  - name: final\n    at: 10m\n    peak: 15000\n    size: 3\n", "field size not found"},
		{"a show without an audience is refused", "shows:\n  - name: final\n    at: 10m\n    peak: 0\n", "shows[0].peak 0"},
		{"a show ramping for two hours is refused", "shows:\n  - name: final\n    at: 10m\n    peak: 1\n    ramp: 2h\n", "shows[0].ramp 2h0m0s"},
		{"a file without shows is refused", "shows: []\n", "no shows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			shows, err := ParseShows(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(shows) != 1 || shows[0].Duration.D() != DefaultShowDuration {
				t.Fatalf("shows %+v, %v", shows, err)
			}
		})
	}
}

// An announced show: mediascale's floor rises one lead time ahead, so
// its nodes serve when the crowd comes; each peer's scheduled floor
// starts with the show, and its nodes come one launch later.
func TestAnAnnouncedShowIsServedWhenItStarts(t *testing.T) {
	p := devPool(t, "live-rtmp-use1")
	p.Capacity.Max = 10
	tr, err := ParseTrace(strings.NewReader(csv(0, 200, 1800, 200, 1920, 6000, 5400, 6000, 5500, 200, 7200, 200)))
	if err != nil {
		t.Fatal(err)
	}
	shows := []Show{{Name: "final", At: pool.Duration(30 * time.Minute), Peak: 6000, Ramp: pool.Duration(2 * time.Minute), Duration: pool.Duration(time.Hour)}}
	unannounced, _ := Compare(p, DefaultModel(), tr, "show")
	announced, err := Compare(p, DefaultModel(), tr, "show", shows...)
	if err != nil {
		t.Fatal(err)
	}
	by := func(r Report) map[string]Figures {
		m := map[string]Figures{}
		for _, x := range r.Results {
			m[x.Policy] = x.Figures
		}
		return m
	}
	before, after := by(unannounced), by(announced)
	if ms := after["mediascale"]; ms.UnderAccuracy != 0 || ms.Refused > 10 {
		t.Errorf("mediascale with the show announced: under %.2f, refused %.0f; want the nodes serving at the start", ms.UnderAccuracy, ms.Refused)
	}
	for _, peer := range []string{"hpa", "target-tracking", "step-scaling"} {
		if a, b := after[peer], before[peer]; a.UnderAccuracy >= b.UnderAccuracy || a.UnderAccuracy == 0 {
			t.Errorf("%s: under %.2f with its schedule, %.2f without; want less, but not none: its floor starts with the show", peer, a.UnderAccuracy, b.UnderAccuracy)
		}
	}
	if after["edge-fixed-step"] != before["edge-fixed-step"] {
		t.Errorf("the old fixed step has no schedule, yet its figures moved")
	}
	if len(announced.Goals) == 0 || announced.Goals[0].Kind != GoalShow {
		t.Fatalf("goals %+v, want the announced show's", announced.Goals)
	}
}

func TestScaledShowsAnnounceEveryPeakThatFarOff(t *testing.T) {
	shows := []Show{{Name: "a", Peak: 15000}, {Name: "b", Peak: 1}}
	got := Scaled(shows, 0.5)
	if got[0].Peak != 7500 || got[1].Peak != 1 || shows[0].Peak != 15000 {
		t.Fatalf("scaled %+v from %+v: want 7500 and at least 1, the original untouched", got, shows)
	}
}
