package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
)

const loopMachine = "arn:aws:states:us-east-1:123456789012:stateMachine:pressure"

func roundEvent(t *testing.T, pool, loop string, round int) []byte {
	t.Helper()
	raw, err := json.Marshal(events.PressureRound{Source: events.PressureSource, Pool: pool, Loop: loop, Round: round})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func loopsStarted(sf *fakeSFN) []string {
	var names []string
	for _, s := range sf.started {
		if aws.ToString(s.StateMachineArn) == loopMachine {
			names = append(names, aws.ToString(s.Name))
		}
	}
	return names
}

func TestAnOverloadedPoolGetsOnePressureLoop(t *testing.T) {
	store, sf := goldenFleet("alarm-connections-high.json"), &fakeSFN{}
	h := newTestHandlerWith(t, store, sf, eventTime).WithPressureLoop(loopMachine)
	d, err := h.Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionScale {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	loops := loopsStarted(sf)
	want := LoopName("live-rtmp-use1", eventTime)
	if len(loops) != 1 || loops[0] != want || d.PressureLoop != want || store.loops["live-rtmp-use1"] != want {
		t.Fatalf("loops started %v, decision's %q, lease %q; want one, %s", loops, d.PressureLoop, store.loops["live-rtmp-use1"], want)
	}
	var in events.PressureLoopInput
	if err := json.Unmarshal([]byte(aws.ToString(sf.started[len(sf.started)-1].Input)), &in); err != nil ||
		in.Pressure != (events.PressureState{Pool: "live-rtmp-use1", WaitSeconds: 15, Continue: true}) {
		t.Fatalf("loop input %+v, %v", in, err)
	}
	if !strings.Contains(d.Reason, "under pressure (connections 2050 per node > 1200 target): loop "+want+" decides the pool every 15s") {
		t.Fatalf("reason %q does not say why the loop started", d.Reason)
	}
	// The schedule's next tick finds the pool still overloaded and the
	// loop still running: no second loop.
	h = newTestHandlerWith(t, store, sf, eventTime.Add(30*time.Second)).WithPressureLoop(loopMachine)
	if _, err := h.Handle(context.Background(), readEvent(t, "schedule-tick.json")); err != nil {
		t.Fatal(err)
	}
	if loops := loopsStarted(sf); len(loops) != 1 {
		t.Fatalf("loops started %v: one pool, one loop", loops)
	}
}

func TestAQuietPoolGetsNoPressureLoop(t *testing.T) {
	store, sf := goldenFleet("schedule-tick-low"), &fakeSFN{}
	h := newTestHandlerWith(t, store, sf, eventTime).WithPressureLoop(loopMachine)
	if _, err := h.Handle(context.Background(), readEvent(t, "schedule-tick.json")); err != nil {
		t.Fatal(err)
	}
	if loops := loopsStarted(sf); len(loops) != 0 {
		t.Fatalf("loops started %v for a pool within target", loops)
	}
}

func TestPressureRounds(t *testing.T) {
	hot := []fleet.Node{reporting("live-rtmp-use1", "n-1", 2000, 40), reporting("live-rtmp-use1", "n-2", 2100, 41), parked()}
	calm := []fleet.Node{reporting("live-rtmp-use1", "n-1", 700, 20), reporting("live-rtmp-use1", "n-2", 800, 21), parked()}
	const loop = "live-rtmp-use1-pressure-20261121T110005000Z"
	cases := []struct {
		name     string
		nodes    []fleet.Node
		holder   string
		round    int
		cont     bool
		scaled   bool
		reason   string
		leaseEnd bool
	}{
		{"a round in an overloaded pool decides it again and goes on", hot, loop, 3, true, true, "load calls for", false},
		{"a round in a pool within target ends the loop and frees its lease", calm, loop, 3, false, false, "the pool is within target; the pressure loop ends", true},
		{"a loop that lost its lease ends without deciding", hot, "another-loop", 3, false, false, "no longer holds the pool's loop lease", false},
		{"the round after the last ends the loop", hot, loop, events.MaxPressureRounds, false, false, "ends after 240 rounds", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, sf := newFakeStore(), &fakeSFN{}
			store.nodes["live-rtmp-use1"] = tc.nodes
			store.loops["live-rtmp-use1"] = tc.holder
			h := newTestHandlerWith(t, store, sf, eventTime).WithPressureLoop(loopMachine)
			d, err := h.Handle(context.Background(), roundEvent(t, "live-rtmp-use1", loop, tc.round))
			if err != nil {
				t.Fatal(err)
			}
			if d.Pressure == nil || d.Pressure.Continue != tc.cont || d.Pressure.Round != tc.round+1 || d.Pressure.Pool != "live-rtmp-use1" || d.Pressure.WaitSeconds != 15 {
				t.Fatalf("loop state %+v, want continue %v at round %d", d.Pressure, tc.cont, tc.round+1)
			}
			if scaled := len(sf.started) > 0; scaled != tc.scaled || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("scaled %v with reason %q; want %v with %q", scaled, d.Reason, tc.scaled, tc.reason)
			}
			if _, held := store.loops["live-rtmp-use1"]; held == tc.leaseEnd {
				t.Fatalf("loop lease %v after the round, want it freed: %v", store.loops, tc.leaseEnd)
			}
			if loops := loopsStarted(sf); len(loops) != 0 {
				t.Fatalf("a round started loop %v: rounds never start loops", loops)
			}
		})
	}
}

func TestAMalformedPressureRoundIsRefused(t *testing.T) {
	for name, raw := range map[string]string{
		"an unknown pool":     `{"source":"mediascale.pressure","pool":"nope","loop":"x","round":0}`,
		"no loop":             `{"source":"mediascale.pressure","pool":"live-rtmp-use1","round":0}`,
		"an unknown field":    `{"source":"mediascale.pressure","pool":"live-rtmp-use1","loop":"x","round":0,"force":true}`,
		"a negative round":    `{"source":"mediascale.pressure","pool":"live-rtmp-use1","loop":"x","round":-1}`,
		"a round of no round": `{"source":"mediascale.pressure","pool":"live-rtmp-use1","loop":"x","round":"one"}`,
	} {
		t.Run(name, func(t *testing.T) {
			store := newFakeStore()
			_, err := newTestHandler(t, store, eventTime).WithPressureLoop(loopMachine).Handle(context.Background(), json.RawMessage(raw))
			var invalid *events.InvalidInput
			if !errors.As(err, &invalid) || len(store.calls) != 0 {
				t.Fatalf("err %v, calls %v; want InvalidInput and nothing touched", err, store.calls)
			}
		})
	}
}

func TestAnAnnouncedShowRaisesTheFloorAheadOfItsStartUntilCancelled(t *testing.T) {
	quiet := []fleet.Node{reporting("live-rtmp-use1", "n-1", 100, 10), parked()}
	show := fleet.Show{Pool: "live-rtmp-use1", ID: "final", Start: eventTime.Add(5 * time.Minute), Peak: 4000, By: "sre"}
	for _, tc := range []struct {
		name      string
		cancelled bool
		at        time.Time
		grow      bool
	}{
		{"inside one lead time of the start the pool grows to what the peak needs", false, eventTime, true},
		{"a cancelled show raises nothing", true, eventTime, false},
		{"long before the start nothing is raised", false, eventTime.Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, sf := newFakeStore(), &fakeSFN{}
			store.nodes["live-rtmp-use1"] = quiet
			s := show
			if tc.cancelled {
				s.CancelledAt, s.CancelledBy = &eventTime, "sre"
			}
			store.shows["live-rtmp-use1"] = []fleet.Show{s}
			d, err := newTestHandlerWith(t, store, sf, tc.at).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
			if err != nil {
				t.Fatal(err)
			}
			live := d.Pools[0]
			if grew := live.Action == ActionScale && live.Direction == "out"; grew != tc.grow {
				t.Fatalf("decision %s %s: %s", live.Action, live.Direction, live.Reason)
			}
			// The dev live pool's target is 1200 sessions a node: 4000
			// need 4 nodes, within its max of 6.
			if tc.grow && (live.Recommendation.Desired != 4 || !strings.Contains(live.Reason, "below show final floor 4")) {
				t.Fatalf("grew to %d: %s", live.Recommendation.Desired, live.Reason)
			}
		})
	}
}
