package capacity

import (
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

func TestShowFloor(t *testing.T) {
	p := livePool(t) // target 1200 connections a node, max 6
	start := now.Add(time.Hour)
	final := Show{Name: "final", Start: start, Peak: 6000}
	lead := 10 * time.Minute
	load := func(at time.Time, conns float64) fleet.Sample {
		return fleet.Sample{At: at, Load: fleet.Load{Connections: conns}}
	}
	cases := []struct {
		name   string
		shows  []Show
		window []fleet.Sample
		at     time.Time
		floor  int
		reason string
	}{
		{"before one lead time ahead of the start nothing is raised", []Show{final}, nil, start.Add(-11 * time.Minute), 0, ""},
		{"one lead time ahead the floor is what the peak needs", []Show{final}, nil, start.Add(-lead), 5, "show final at 21:00 expects 6000 sessions: floor 5 nodes from 20:50:00 (lead 10m0s)"},
		{"never above max", []Show{{Name: "cup", Start: start, Peak: 60000}}, nil, start, 6, "floor 6 nodes"},
		{"through the grace the floor holds whatever the load", []Show{final}, []fleet.Sample{load(start.Add(5*time.Minute), 100)}, start.Add(9 * time.Minute), 5, "show final"},
		{"after the grace a show whose audience did not come stands down", []Show{final},
			[]fleet.Sample{load(start.Add(5*time.Minute), 2900)}, start.Add(11 * time.Minute), 0, "show final stood down: 2900 of its 6000 sessions came"},
		{"after the grace the reactive controller sizes the pool for the audience that came", []Show{final},
			[]fleet.Sample{load(start.Add(5*time.Minute), 9000)}, start.Add(11 * time.Minute), 0, "show final is under way with 9000 sessions: the reactive controller sizes the pool"},
		{"a long ramp extends the grace", []Show{{Name: "slow", Start: start, Peak: 6000, Ramp: 30 * time.Minute}},
			[]fleet.Sample{load(start.Add(20*time.Minute), 1000)}, start.Add(21 * time.Minute), 5, "show slow"},
		{"an hour after its grace a show says nothing", []Show{final}, nil, start.Add(71 * time.Minute), 0, ""},
		{"of two shows the larger sets the floor", []Show{final, {Name: "news", Start: start.Add(-5 * time.Minute), Peak: 2000}}, nil, start, 5, "show final"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			floor, _, reason := ShowFloor(p, tc.shows, tc.window, tc.at, lead, WarmStart{})
			if floor != tc.floor || !strings.Contains(reason, tc.reason) || tc.reason == "" && reason != "" {
				t.Fatalf("floor %d (%q), want %d (%q)", floor, reason, tc.floor, tc.reason)
			}
		})
	}
}

func TestAWarmPoolThatCoversAShowLetsItsFloorRiseOneWarmLeadAhead(t *testing.T) {
	p := livePool(t)
	start := now.Add(time.Hour)
	final := []Show{{Name: "final", Start: start, Peak: 6000}} // 5 nodes
	cold, warmLead := 10*time.Minute, 3*time.Minute
	cases := []struct {
		name  string
		warm  WarmStart
		at    time.Time
		floor int
	}{
		{"four parked beside one serving cover the show: nothing yet a cold lead ahead", WarmStart{Ready: 4, Current: 1, Lead: warmLead}, start.Add(-cold), 0},
		{"four parked beside one serving cover the show: the floor one warm lead ahead", WarmStart{Ready: 4, Current: 1, Lead: warmLead}, start.Add(-warmLead), 5},
		{"three parked do not: the floor one cold lead ahead", WarmStart{Ready: 3, Current: 1, Lead: warmLead}, start.Add(-cold), 5},
		{"without a warm lead the cold one", WarmStart{Ready: 9, Current: 1}, start.Add(-cold), 5},
		{"a pool that already holds the show's nodes keeps the floor from a cold lead ahead", WarmStart{Ready: 0, Current: 5, Lead: warmLead}, start.Add(-cold), 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if floor, _, reason := ShowFloor(p, final, nil, tc.at, cold, tc.warm); floor != tc.floor {
				t.Fatalf("floor %d (%s), want %d", floor, reason, tc.floor)
			}
		})
	}
}

func TestShowsAroundNow(t *testing.T) {
	p := livePool(t)
	p.Shows = []pool.Show{{Name: "evening", Start: "20:30", Peak: 3000, Days: []string{"sat"}}, {Name: "daily", Start: "06:00", Peak: 100}}
	// now is Saturday 2026-11-21 20:00 UTC.
	cancelled := time.Now()
	announced := []fleet.Show{
		{ID: "final", Start: now.Add(2 * time.Hour), Peak: 9000, RampSeconds: 60},
		{ID: "off", Start: now.Add(time.Hour), Peak: 9000, CancelledAt: &cancelled},
	}
	var got []string
	for _, s := range Shows(p, announced, now) {
		got = append(got, s.Name+"@"+s.Start.Format("Mon 15:04"))
	}
	want := "daily@Fri 06:00,daily@Sat 06:00,evening@Sat 20:30,final@Sat 22:00,daily@Sun 06:00"
	if strings.Join(got, ",") != want {
		t.Fatalf("shows %v, want %s: the cancelled show and other weekdays' evenings left out", got, want)
	}
}

// A show's floor refills the pool as any floor does, and says whose it is.
func TestAShowFloorRefillsThePoolAndSaysWhose(t *testing.T) {
	p := livePool(t)
	rec := Recommend(Inputs{Pool: p, Nodes: quiet("a"), Floor: 5, FloorSource: "show final", Now: now})
	if rec.Direction != Grow || rec.Desired != 5 || !strings.Contains(rec.Reason, "below show final floor 5: refilling to 5") {
		t.Fatalf("recommendation %s to %d: %s", rec.Direction, rec.Desired, rec.Reason)
	}
}
