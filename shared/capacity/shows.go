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
// a show's floor holds. From then on the reactive controller alone sizes
// the pool for the audience that came: a peak over-estimated does not
// keep idle nodes, and one that did not come is stood down.
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
// audience comes; a warm lead when the warm pool covers the show) until
// ShowGrace after it (or its ramp). by names the
// show that sets the floor; the reason says so, or, for a show whose grace
// ended within the hour, whether its audience came (at least half the
// expected peak in the window's samples since the start).
func ShowFloor(p pool.Pool, shows []Show, window []fleet.Sample, now time.Time, lead time.Duration, warm WarmStart) (floor int, by, reason string) {
	if Targets(p)[pool.MetricConnections] <= 0 {
		return 0, "", ""
	}
	for _, s := range shows {
		end := s.Start.Add(max(ShowGrace, s.Ramp))
		need := NodesFor(p, s.Peak)
		from := s.Start.Add(-lead)
		// Once the pool holds what the show needs, the cold lead keeps the
		// floor: its nodes must not be shrunk away before the start.
		if warm.Lead > 0 && warm.Lead < lead && need > warm.Current && warm.Ready >= need-warm.Current {
			from = s.Start.Add(-warm.Lead)
		}
		switch {
		case now.Before(from):
			continue
		case !now.Before(end):
			if reason == "" && now.Sub(end) < time.Hour {
				if most := peak(window, s.Start); most < s.Peak/2 {
					reason = fmt.Sprintf("show %s stood down: %.0f of its %.0f sessions came", s.Name, most, s.Peak)
				} else {
					reason = fmt.Sprintf("show %s is under way with %.0f sessions: the reactive controller sizes the pool", s.Name, most)
				}
			}
			continue
		}
		if need > floor {
			floor, by = need, "show "+s.Name
			reason = fmt.Sprintf("show %s at %s expects %.0f sessions: floor %d nodes from %s (lead %s)",
				s.Name, s.Start.UTC().Format("15:04"), s.Peak, need, from.UTC().Format("15:04:05"), s.Start.Sub(from))
		}
	}
	return floor, by, reason
}

// WarmStart is what the warm pool offers a show's floor: Ready parked
// nodes of the pool's current revision, beside Current serving or on
// their way, serve Lead after a decision. When they cover what a show
// needs the floor rises one warm lead ahead instead of a cold one: the
// parked nodes paid their boot and deployment when they were filled.
type WarmStart struct {
	Ready, Current int
	Lead           time.Duration
}

// peak is the most sessions a sample of the window carried since t.
func peak(window []fleet.Sample, since time.Time) float64 {
	most := 0.0
	for _, s := range window {
		if !s.At.Before(since) {
			most = math.Max(most, s.Load.Connections)
		}
	}
	return most
}
