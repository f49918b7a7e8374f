package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// PressureSource marks a round of a pool's pressure loop: the state
// machine mediascale-<env>-pressure asks the trigger to decide the pool
// again every 15 s while it stays overloaded (README.md, "Decisions
// under pressure").
const PressureSource = "mediascale.pressure"

// MaxPressureRounds bounds one loop: an hour of rounds 15 s apart. A pool
// still overloaded after it gets a new loop from its next alarm or tick.
const MaxPressureRounds = 240

// PressureRound is one round's input, as the loop's Decide state builds
// it: the pool, the loop execution's own name (which owns the pool's
// loop lease) and the rounds done so far.
type PressureRound struct {
	Source string `json:"source"`
	Pool   string `json:"pool"`
	Loop   string `json:"loop"`
	Round  int    `json:"round"`
}

// PressureState is the loop's state between rounds: what each round's
// decision hands the state machine (its Wait reads waitSeconds, its
// Choice continue) and the next round reads (pool, round).
type PressureState struct {
	Pool        string `json:"pool"`
	Round       int    `json:"round"`
	WaitSeconds int    `json:"waitSeconds"`
	Continue    bool   `json:"continue"`
}

// PressureLoopInput is what the trigger starts a pressure loop with, and
// the shape of every round's output the loop reads.
type PressureLoopInput struct {
	Pressure PressureState `json:"pressure"`
}

// PressureInterval is how often a loop decides its pool again.
const PressureInterval = 15 * time.Second

// IsPressureRound tells a pressure round from the other events by its
// source, without parsing the rest.
func IsPressureRound(raw []byte) bool {
	var env struct {
		Source string `json:"source"`
	}
	return json.Unmarshal(raw, &env) == nil && env.Source == PressureSource
}

// ParsePressureRound decodes and checks a pressure round strictly.
func ParsePressureRound(raw []byte) (PressureRound, error) {
	if err := checkSize("pressure round", raw); err != nil {
		return PressureRound{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r PressureRound
	if err := dec.Decode(&r); err != nil {
		return r, Invalid("pressure round: %v", err)
	}
	switch {
	case r.Source != PressureSource:
		return r, Invalid("pressure round: source is %q, want %q", r.Source, PressureSource)
	case strings.TrimSpace(r.Pool) == "":
		return r, Invalid("pressure round: pool is missing")
	case strings.TrimSpace(r.Loop) == "":
		return r, Invalid("pressure round: loop is missing: the loop execution's name owns the pool's loop lease")
	case r.Round < 0:
		return r, Invalid("pressure round: round must be at least 0, got %d", r.Round)
	}
	return r, checkTexts(text{"pressure round: pool", r.Pool, MaxPoolNameLength}, text{"pressure round: loop", r.Loop, MaxExecutionNameLength})
}
