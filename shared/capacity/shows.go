package capacity

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Show is an audience expected at a time (README.md, "Announced shows"):
// one an operator announced, or an occurrence of a recurring show of the
// pool file.
type Show struct {
	Name  string
	Start time.Time
	// Peak is the sessions expected at the show's peak, which the
	// audience reaches over Ramp.
	Peak float64
	Ramp time.Duration
}

// ShowGrace is how long after its start (or its ramp, if that is longer)
// a show's floor holds whatever the load says. From then on it holds only
// while at least half the expected audience is there; once a decision
// has seen less, it stands down, as a cancelled show does.
const ShowGrace = 10 * time.Minute

// Shows are the shows that may raise the pool's floor around now: its
// announced ones that are not cancelled, and the pool file's recurring
// ones on the days around now.
func Shows(p pool.Pool, announced []fleet.Show, now time.Time) []Show {
	var out []Show
	for _, a := range announced {
		if !a.Cancelled() {
			out = append(out, Show{Name: a.ID, Start: a.Start, Peak: float64(a.Peak), Ramp: a.Ramp()})
		}
	}
	for _, r := range p.Shows {
		for _, day := range []time.Duration{-24 * time.Hour, 0, 24 * time.Hour} {
			if at, ok := r.At(now.Add(day)); ok {
				out = append(out, Show{Name: r.Name, Start: at, Peak: float64(r.Peak), Ramp: r.Ramp.D()})
			}
		}
	}
	slices.SortFunc(out, func(a, b Show) int { return a.Start.Compare(b.Start) })
	return out
}

// ShowFloor is the floor the pool's shows call for at now: the nodes each
// show's expected peak needs at the pool's connection target, never above
// max, from one lead time before its start (so the nodes serve when the
// audience comes) through its grace; after that while the window's
// samples since the grace ended saw at least half the expected audience.
// by names the show that sets the floor; the reason says so, or names the
// show that stood down.
func ShowFloor(p pool.Pool, shows []Show, window []fleet.Sample, now time.Time, lead time.Duration) (floor int, by, reason string) {
	target := Targets(p)[pool.MetricConnections]
	if target <= 0 {
		return 0, "", ""
	}
	for _, s := range shows {
		if now.Before(s.Start.Add(-lead)) {
			continue
		}
		graceEnd := s.Start.Add(max(ShowGrace, s.Ramp))
		need := min(int(math.Ceil(s.Peak/target-1e-9)), p.Capacity.Max)
		if !now.Before(graceEnd) {
			came, seen := audience(window, graceEnd, s.Peak/2)
			if seen && !came {
				if reason == "" && now.Sub(graceEnd) < time.Hour {
					reason = fmt.Sprintf("show %s stood down: under half of its %.0f sessions came by %s", s.Name, s.Peak, graceEnd.UTC().Format("15:04"))
				}
				continue
			}
			if !seen && now.Sub(graceEnd) > ShowGrace {
				continue
			}
		}
		if need > floor {
			floor, by = need, "show "+s.Name
			reason = fmt.Sprintf("show %s at %s expects %.0f sessions: floor %d nodes from %s (lead %s)",
				s.Name, s.Start.UTC().Format("15:04"), s.Peak, need, s.Start.Add(-lead).UTC().Format("15:04:05"), lead)
		}
	}
	return floor, by, reason
}

// audience reports whether every sample of the window from since on
// carried at least half sessions, and whether there was one.
func audience(window []fleet.Sample, since time.Time, half float64) (came, seen bool) {
	for _, s := range window {
		if s.At.Before(since) {
			continue
		}
		seen = true
		if s.Load.Connections < half {
			return false, true
		}
	}
	return true, seen
}
