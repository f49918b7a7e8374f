// Package testevents_test checks that every sample event decodes, strictly,
// into the input type of the function whose folder it is in, so the samples
// used with `make invoke` and `sam local invoke` stay true to the code. The
// events in invalid/ are refused by the trigger's own tests.
package testevents_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/drain"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/release"
	"github.com/mediascale/mediascale/shared/simulation"
)

// decoders parse a sample into its function's input type. The trigger takes
// raw events and parses them itself, with its own checks.
var decoders = map[string]func([]byte) error{
	"trigger": func(raw []byte) error {
		if events.IsOperatorEvent(raw) {
			_, err := events.ParseOperatorEvent(raw)
			return err
		}
		if events.IsScheduleEvent(raw) {
			return nil
		}
		_, err := events.ParseAlarmEvent(raw)
		return err
	},
	"plan":    strict[events.ScaleRequest],
	"probe":   strict[health.Request],
	"drain":   strict[drain.Request],
	"release": strict[release.Request],
	// The dispatcher sits behind a function URL.
	"dispatch": strict[lambdaevents.LambdaFunctionURLRequest],
	// The simulator's traces are CSV; TestEveryShippedTraceParses reads
	// them.
	"traces": nil,
}

func strict[T any](raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var v T
	return dec.Decode(&v)
}

func TestEverySampleEventDecodesIntoItsFunctionsInput(t *testing.T) {
	folders, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range folders {
		if !f.IsDir() {
			continue
		}
		decode, ok := decoders[f.Name()]
		if !ok {
			t.Errorf("folder %s has no decoder: which function's events are these?", f.Name())
			continue
		}
		if decode == nil {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(f.Name(), "*.json"))
		for _, file := range files {
			t.Run(file, func(t *testing.T) {
				raw, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if err := decode(raw); err != nil {
					t.Fatalf("%s does not decode: %v", file, err)
				}
			})
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("no sample events")
	}
	env, err := os.ReadFile("env.json")
	if err != nil || !strings.Contains(string(env), "MEDIASCALE_POOLS_PARAMETER") {
		t.Fatalf("env.json for sam local invoke --env-vars: %v", err)
	}
}

func TestEveryShippedTraceParses(t *testing.T) {
	files, _ := filepath.Glob("traces/*.csv")
	if len(files) < 5 {
		t.Fatalf("%d traces shipped, want the five scripts/tracegen writes", len(files))
	}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := simulation.ParseTrace(f)
		f.Close()
		if err != nil || tr.Duration() < time.Hour {
			t.Fatalf("%s: %v (%s long)", file, err, tr.Duration())
		}
	}
}
