// Package trigger is the controller's front door. An alarm's state change
// (the fast path), the schedule (every minute, every pool: the guarantee)
// or an operator wakes it; it reads the pool, asks capacity.Recommend for
// the pool's desired capacity, and starts the scale-out or scale-in
// execution for the difference.
package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/pool"
)

// Actions a decision can take.
const (
	ActionScale  = "scale"
	ActionIgnore = "ignore"
)

// Decision is the trigger's verdict on one event for one pool, with its
// reason.
type Decision struct {
	Action    string         `json:"action"`
	Reason    string         `json:"reason"`
	Alarm     string         `json:"alarm"`
	Pool      string         `json:"pool"`
	Direction pool.Direction `json:"direction"`
	Execution string         `json:"execution,omitempty"`
	// ExecutionARN is set once the execution has started.
	ExecutionARN string `json:"executionArn,omitempty"`
	// Recommendation is the controller's decision this one acted on.
	Recommendation *capacity.Recommendation `json:"recommendation,omitempty"`
	// Pools holds one decision per pool for a schedule tick.
	Pools []Decision `json:"pools,omitempty"`
	// PressureLoop names the pressure loop this decision started.
	PressureLoop string `json:"pressureLoop,omitempty"`
	// Pressure is a pressure round's answer to its loop.
	Pressure *events.PressureState `json:"pressure,omitempty"`
}

// Route maps a validated alarm event to its pool and direction through the
// configuration's alarm index. An alarm the configuration does not name is
// InvalidInput: the rule should never have sent it.
func Route(ev events.AlarmEvent, cfg pool.File, index map[string]pool.AlarmRef) (pool.AlarmRef, pool.Pool, error) {
	ref, ok := index[ev.Detail.AlarmName]
	if !ok {
		return pool.AlarmRef{}, pool.Pool{}, events.Invalid("alarm %q is not a scaling alarm of any pool in environment %s", ev.Detail.AlarmName, cfg.Environment)
	}
	p, ok := cfg.Find(ref.Pool)
	if !ok {
		return pool.AlarmRef{}, pool.Pool{}, events.Invalid("alarm %q names pool %q, which is not configured", ev.Detail.AlarmName, ref.Pool)
	}
	return ref, p, nil
}

// DedupeKey identifies one state change of one alarm; EventBridge may
// deliver it more than once and operators may replay it.
func DedupeKey(ev events.AlarmEvent) string {
	return ev.Detail.AlarmName + "@" + ev.Detail.State.Timestamp
}

// ExecutionName derives the Step Functions execution name from the alarm and
// its state-change time, so a replayed event cannot start a second run
// (StartExecution refuses a name already used). It fits the 80-character
// limit and the allowed characters: pool, direction, time, and a short hash
// of the alarm name so two metrics firing at the same instant stay apart.
func ExecutionName(ref pool.AlarmRef, alarm string, at time.Time) string {
	sum := sha256.Sum256([]byte(alarm))
	return fmt.Sprintf("%s-%s-%s-%s", ref.Pool, ref.Direction,
		strings.ReplaceAll(at.UTC().Format("20060102T150405.000Z"), ".", ""),
		hex.EncodeToString(sum[:4]))
}
