// Package trigger turns a CloudWatch alarm state change into a scaling
// decision for one pool: which pool, which direction, and whether to act
// now or record and ignore the alarm.
package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/pool"
)

// Actions a decision can take.
const (
	ActionScale  = "scale"
	ActionIgnore = "ignore"
)

// Decision is the trigger's verdict on one alarm event, with its reason.
type Decision struct {
	Action    string         `json:"action"`
	Reason    string         `json:"reason"`
	Alarm     string         `json:"alarm"`
	Pool      string         `json:"pool"`
	Direction pool.Direction `json:"direction"`
	Execution string         `json:"execution,omitempty"`
	// ExecutionARN is set once the execution has started.
	ExecutionARN string `json:"executionArn,omitempty"`
}

// Cooldown is what the store knows about a pool's last scale event in the
// alarm's direction and, for scale-in, the last time the pool asked to grow.
type Cooldown struct {
	LastScaled time.Time
	Known      bool
	// GrowWanted is the last scale-out ALARM of the pool, acted on or not.
	GrowWanted time.Time
	GrowKnown  bool
}

// wantOut is the mark of the pool's last request to grow.
const wantOut = "want-out"

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

// Decide is the pure part of the trigger. It is called after the event has
// been routed; duplicate detection has side effects and happens between the
// two checks below, in the handler.
func Decide(ev events.AlarmEvent, ref pool.AlarmRef, p pool.Pool, cd Cooldown, now time.Time) Decision {
	d := Decision{Alarm: ev.Detail.AlarmName, Pool: p.Name, Direction: ref.Direction, Action: ActionIgnore}
	switch ev.Detail.State.Value {
	case events.AlarmStateAlarm:
	case events.AlarmStateInsufficientData:
		d.Reason = "metrics missing (INSUFFICIENT_DATA): the pool holds its current capacity"
		return d
	default:
		d.Reason = fmt.Sprintf("alarm moved to %s, not ALARM: nothing to do", ev.Detail.State.Value)
		return d
	}
	window := p.Cooldowns.ScaleOut.D()
	if ref.Direction == pool.ScaleIn {
		window = p.Cooldowns.ScaleIn.D()
	}
	if cd.Known {
		if since := now.Sub(cd.LastScaled); since < window {
			d.Reason = fmt.Sprintf("inside scale-%s cooldown: last scaled %s ago, window %s", ref.Direction, since.Round(time.Second), window)
			return d
		}
	}
	// Scale-in stabilization, as Kubernetes' HPA does it: over the
	// scale-in window the highest recommendation wins, so any request to
	// grow in that window holds the pool where it is.
	if ref.Direction == pool.ScaleIn && cd.GrowKnown {
		if since := now.Sub(cd.GrowWanted); since < window {
			d.Reason = fmt.Sprintf("stabilizing: the pool asked to grow %s ago; scale-in waits %s after that", since.Round(time.Second), window)
			return d
		}
	}
	d.Action = ActionScale
	d.Execution = ExecutionName(ref, ev.Detail.AlarmName, ev.Detail.State.At)
	d.Reason = fmt.Sprintf("%s alarm %s in ALARM since %s", ref.Metric, ev.Detail.AlarmName, ev.Detail.State.Timestamp)
	return d
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
