package stack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mediascale/mediascale/events"
)

// parsed builds a definition with an ARN for every function and decodes it.
func parsed(t *testing.T, build func(map[string]string) (string, error)) map[string]any {
	t.Helper()
	arns := map[string]string{}
	for _, fn := range append(ScaleOutFunctions, "drain", "trigger") {
		arns[fn] = "arn:aws:lambda:us-east-1:123456789012:function:" + fn
	}
	raw, err := build(arns)
	if err != nil {
		t.Fatal(err)
	}
	var def map[string]any
	if err := json.Unmarshal([]byte(raw), &def); err != nil {
		t.Fatal(err)
	}
	return def
}

func parsedDefinition(t *testing.T) map[string]any { return parsed(t, ScaleOutDefinition) }

func states(def map[string]any) map[string]any { return def["States"].(map[string]any) }

func nodeStatesOf(def map[string]any) map[string]any {
	return states(def)["Nodes"].(map[string]any)["ItemProcessor"].(map[string]any)["States"].(map[string]any)
}

func TestEveryRetriedErrorIsANamedErrorOrLambdas(t *testing.T) {
	known := map[string]bool{"States.ALL": true}
	for _, n := range events.AllErrorNames() {
		known[n] = true
	}
	for _, n := range lambdaTransient {
		known[n] = true
	}
	var check func(name string, s map[string]any)
	check = func(name string, s map[string]any) {
		for _, key := range []string{"Retry", "Catch"} {
			list, _ := s[key].([]any)
			for _, r := range list {
				for _, e := range r.(map[string]any)["ErrorEquals"].([]any) {
					if !known[e.(string)] {
						t.Errorf("state %s: %s on %q, which no handler returns", name, key, e)
					}
				}
			}
		}
	}
	def := parsedDefinition(t)
	for name, s := range states(def) {
		check(name, s.(map[string]any))
	}
	for name, s := range nodeStatesOf(def) {
		check(name, s.(map[string]any))
	}
}

func TestEveryNodeTaskRollsBackAndEveryPathReleasesTheLock(t *testing.T) {
	def := parsedDefinition(t)
	for name, raw := range nodeStatesOf(def) {
		s := raw.(map[string]any)
		if s["Type"] != "Task" || name == "Rollback" || name == "TrafficOff" {
			continue
		}
		catch := s["Catch"].([]any)[0].(map[string]any)
		if catch["Next"] != "TrafficOff" || catch["ErrorEquals"].([]any)[0] != "States.ALL" {
			t.Errorf("node task %s does not take the node's traffic off and roll back on every error: %v", name, catch)
		}
	}
	// Traffic off comes first and the rollback follows whether it worked
	// or not; its failure is kept apart from the node's.
	off := nodeStatesOf(def)["TrafficOff"].(map[string]any)
	offCatch := off["Catch"].([]any)[0].(map[string]any)
	if off["Next"] != "Rollback" || offCatch["Next"] != "Rollback" || offCatch["ResultPath"] == "$.failure" ||
		off["Parameters"].(map[string]any)["action"] != events.RollbackTrafficOff {
		t.Errorf("TrafficOff does not lead to Rollback on both paths with its own action and failure: %v", off)
	}
	for _, name := range []string{"Plan", "Nodes"} {
		catch := states(def)[name].(map[string]any)["Catch"].([]any)[0].(map[string]any)
		if catch["Next"] != "ReleaseAfterFailure" {
			t.Errorf("%s does not release the lock on failure: %v", name, catch)
		}
	}
	if states(def)["Nodes"].(map[string]any)["Next"] != "Release" {
		t.Error("the Map does not end in Release")
	}
}

// happyPath walks the node states from Launch, deciding every Choice from
// a happy run's facts (every poll ready, every probe healthy, the given
// number of shift steps; warm says the instance was started from the warm
// pool; goal is the task's), and returns the states entered: the
// transitions Step Functions bills per node, and the last one.
func happyPath(t *testing.T, nodes map[string]any, steps int, warm bool, goal string) (int, string) {
	t.Helper()
	shifts := 0
	facts := map[string]any{
		"$.instance.ready": true, "$.instance.deployed": warm, "$.deploy.ready": true,
		"$.probe.healthy": true, "$.park.ready": true, "$.task.goal": goal,
	}
	var holds func(rule map[string]any) bool
	holds = func(rule map[string]any) bool {
		if all, ok := rule["And"].([]any); ok {
			for _, r := range all {
				if !holds(r.(map[string]any)) {
					return false
				}
			}
			return true
		}
		v := facts[rule["Variable"].(string)]
		if want, ok := rule["BooleanEquals"]; ok {
			return v == want
		}
		return v == rule["StringEquals"]
	}
	count, name := 0, "Launch"
	for i := 0; i < 200; i++ {
		count++
		s := nodes[name].(map[string]any)
		switch s["Type"] {
		case "Succeed":
			return count, name
		case "Choice":
			if name == "Shifted" {
				shifts++
				facts["$.shift.done"] = shifts > steps
			}
			next := s["Default"].(string)
			for _, c := range s["Choices"].([]any) {
				if holds(c.(map[string]any)) {
					next = c.(map[string]any)["Next"].(string)
					break
				}
			}
			name = next
		default:
			name = s["Next"].(string)
		}
	}
	t.Fatal("no end reached")
	return 0, ""
}

func TestAFiveStepScaleOutStaysWithinThirtyTransitionsPerNode(t *testing.T) {
	nodes := nodeStatesOf(parsedDefinition(t))
	cases := []struct {
		name        string
		warm        bool
		goal        string
		transitions int
		end         string
	}{
		{"a new node is launched, deployed, probed and shifted", false, "serve", 28, "Active"},
		{"a warm node is started, probed and shifted without a second deployment", true, "serve", 24, "Active"},
		{"a node for the warm pool is launched, deployed, probed and parked", false, "warm", 13, "Warm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, end := happyPath(t, nodes, 5, tc.warm, tc.goal)
			if end != tc.end {
				t.Fatalf("ended in %s, want %s", end, tc.end)
			}
			if got > 30 {
				t.Fatalf("%d transitions per node, budget 30", got)
			}
			if got != tc.transitions {
				t.Fatalf("%d transitions per node; the budget in the notes says %d, update both", got, tc.transitions)
			}
		})
	}
}

func TestTheDefinitionNeedsEveryFunction(t *testing.T) {
	if _, err := ScaleOutDefinition(map[string]string{"plan": "x"}); err == nil || !strings.Contains(err.Error(), "no ARN for function") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ScaleInDefinition(map[string]string{"plan": "x", "release": "y"}); err == nil || !strings.Contains(err.Error(), "no ARN for function drain") {
		t.Fatalf("err = %v", err)
	}
}

// Step Functions uses the first retrier an error matches and never falls
// through: the steps that must finish have one retrier for every error.
func TestTheStepsThatMustFinishRetryEveryErrorWithOneRetrier(t *testing.T) {
	scaleIn := parsed(t, ScaleInDefinition)
	out := parsedDefinition(t)
	for name, s := range map[string]any{
		"scale-out Release": states(out)["Release"], "scale-out ReleaseAfterFailure": states(out)["ReleaseAfterFailure"],
		"Rollback": nodeStatesOf(out)["Rollback"], "Restore": nodeStatesOf(scaleIn)["Restore"], "scale-in Release": states(scaleIn)["Release"],
	} {
		retry := s.(map[string]any)["Retry"].([]any)
		first := retry[0].(map[string]any)
		if len(retry) != 1 || first["ErrorEquals"].([]any)[0] != "States.ALL" || first["MaxAttempts"].(float64) < 8 {
			t.Errorf("%s retries with %v; want one retrier for States.ALL with at least 8 attempts", name, retry)
		}
	}
	// Taking a failed node's traffic off retries longer than any step.
	longest := func(r map[string]any) float64 {
		total, pause := 0.0, r["IntervalSeconds"].(float64)
		for i := 0; i < int(r["MaxAttempts"].(float64)); i++ {
			if m, ok := r["MaxDelaySeconds"].(float64); ok {
				pause = min(pause, m)
			}
			total += pause
			pause *= r["BackoffRate"].(float64)
		}
		return total
	}
	offRetry := nodeStatesOf(out)["TrafficOff"].(map[string]any)["Retry"].([]any)
	off := longest(offRetry[0].(map[string]any))
	every := map[string]map[string]any{}
	for name, s := range states(out) {
		every["scale-out "+name] = s.(map[string]any)
	}
	for name, s := range nodeStatesOf(out) {
		every["node "+name] = s.(map[string]any)
	}
	for name, s := range states(scaleIn) {
		every["scale-in "+name] = s.(map[string]any)
	}
	for name, s := range nodeStatesOf(scaleIn) {
		every["drain "+name] = s.(map[string]any)
	}
	for name, s := range every {
		if name == "node TrafficOff" {
			continue
		}
		retry, _ := s["Retry"].([]any)
		for _, r := range retry {
			if d := longest(r.(map[string]any)); d >= off {
				t.Errorf("%s retries for up to %.0f s, TrafficOff for %.0f s: taking traffic off must retry longest", name, d, off)
			}
		}
	}
	if off < 5*60 {
		t.Errorf("TrafficOff retries for %.0f s, want several minutes", off)
	}
}

// The pressure loop's paths name the fields of events.PressureState and
// events.PressureRound: what a round answers is what the next one reads.
func TestThePressureLoopWaitsDecidesAndGoesRoundWhileTheTriggerSaysSo(t *testing.T) {
	def := parsed(t, PressureDefinition)
	st := states(def)
	if def["StartAt"] != "Wait" {
		t.Fatalf("the loop starts at %v: the decision that started it has just been made, so it waits first", def["StartAt"])
	}
	wait := st["Wait"].(map[string]any)
	decide := st["Decide"].(map[string]any)
	pressed := st["Pressed"].(map[string]any)
	params := decide["Parameters"].(map[string]any)
	raw, _ := json.Marshal(events.PressureLoopInput{Pressure: events.PressureState{Pool: "p", Round: 1, WaitSeconds: 15, Continue: true}})
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	field := func(path string) any {
		var v any = out
		for _, k := range strings.Split(strings.TrimPrefix(path, "$."), ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	rule := pressed["Choices"].([]any)[0].(map[string]any)
	for _, path := range []string{wait["SecondsPath"].(string), params["pool.$"].(string), params["round.$"].(string), rule["Variable"].(string)} {
		if field(path) == nil {
			t.Errorf("the loop reads %s, which a round's answer does not carry", path)
		}
	}
	if params["source"] != events.PressureSource || params["loop.$"] != "$$.Execution.Name" || decide["ResultPath"] != "$" || !strings.HasSuffix(decide["Resource"].(string), ":trigger") {
		t.Fatalf("Decide = %v", decide)
	}
	if rule["Next"] != "Wait" || pressed["Default"] != "Calm" {
		t.Fatalf("Pressed = %v: round again while the trigger says continue, else end", pressed)
	}
	if len(st) != 4 {
		t.Fatalf("%d states: a round is Wait, Decide, Pressed (three transitions), then Calm", len(st))
	}
}
