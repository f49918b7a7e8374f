package simulation

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// Show is a show announced for a simulated trace (README.md, "Simulating a
// pool"): its audience of about Peak sessions arrives At from the trace's
// start, over Ramp. mediascale turns it into its controller's show floor
// (capacity.ShowFloor); each peer gets what it would use for the same
// knowledge, a floor of the peak's nodes from the start for Duration: an
// EC2 Auto Scaling scheduled action (target tracking, step scaling) or a
// KEDA cron trigger (HPA).
type Show struct {
	Name     string        `yaml:"name" json:"name"`
	At       pool.Duration `yaml:"at" json:"at"`
	Peak     int           `yaml:"peak" json:"peak"`
	Ramp     pool.Duration `yaml:"ramp,omitempty" json:"ramp,omitempty"`
	Duration pool.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
}

// DefaultShowDuration is how long a peer's scheduled floor lasts when the
// show file does not say.
const DefaultShowDuration = time.Hour

// ParseShows reads a show file: YAML (or JSON), a list under shows.
func ParseShows(r io.Reader) ([]Show, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the shows: %w", err)
	}
	var doc struct {
		Shows []Show `yaml:"shows"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("show file: %w", err)
	}
	if len(doc.Shows) == 0 {
		return nil, fmt.Errorf("show file: no shows")
	}
	for i, s := range doc.Shows {
		switch {
		case s.Name == "":
			return nil, fmt.Errorf("shows[%d].name is missing", i)
		case s.At < 0 || s.At.D() > MaxTraceLength:
			return nil, fmt.Errorf("shows[%d].at %s: must be from 0 to %s", i, s.At, MaxTraceLength)
		case s.Peak < 1 || s.Peak > pool.MaxShowPeak:
			return nil, fmt.Errorf("shows[%d].peak %d: must be from 1 to %d sessions", i, s.Peak, pool.MaxShowPeak)
		case s.Ramp < 0 || s.Ramp.D() > time.Hour:
			return nil, fmt.Errorf("shows[%d].ramp %s: must be from 0 to 1h", i, s.Ramp)
		case s.Duration < 0 || s.Duration.D() > 24*time.Hour:
			return nil, fmt.Errorf("shows[%d].duration %s: must be from 0 to 24h", i, s.Duration)
		}
		if s.Duration == 0 {
			doc.Shows[i].Duration = pool.Duration(DefaultShowDuration)
		}
	}
	return doc.Shows, nil
}

// Scaled is the shows with each peak estimate times k: an announcement
// that was off.
func Scaled(shows []Show, k float64) []Show {
	out := make([]Show, len(shows))
	for i, s := range shows {
		s.Peak = max(1, int(math.Round(float64(s.Peak)*k)))
		out[i] = s
	}
	return out
}

// forController is the shows as the controller takes them.
func forController(shows []Show) []capacity.Show {
	out := make([]capacity.Show, len(shows))
	for i, s := range shows {
		out[i] = capacity.Show{Name: s.Name, Start: Epoch.Add(s.At.D()), Peak: float64(s.Peak), Ramp: s.Ramp.D()}
	}
	return out
}

// schedule is a peer's scheduled floor: the nodes each show's peak needs
// at the target, never above max, from its start for its duration.
type schedule []Show

func (s schedule) floor(p pool.Pool, now time.Time) int {
	floor := 0
	for _, sh := range s {
		from := Epoch.Add(sh.At.D())
		if !now.Before(from) && now.Before(from.Add(sh.Duration.D())) {
			floor = max(floor, capacity.NodesFor(p, float64(sh.Peak)))
		}
	}
	return floor
}
