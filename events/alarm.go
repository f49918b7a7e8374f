package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Alarm states as CloudWatch names them.
const (
	AlarmStateOK                = "OK"
	AlarmStateAlarm             = "ALARM"
	AlarmStateInsufficientData  = "INSUFFICIENT_DATA"
	AlarmDetailType             = "CloudWatch Alarm State Change"
	AlarmSource                 = "aws.cloudwatch"
	alarmStateTimestampLayout   = "2006-01-02T15:04:05.000-0700"
	alarmStateTimestampLayoutNs = "2006-01-02T15:04:05.999999999-0700"
)

// AlarmEvent is the EventBridge envelope of a "CloudWatch Alarm State Change".
type AlarmEvent struct {
	Version    string      `json:"version"`
	ID         string      `json:"id"`
	DetailType string      `json:"detail-type"`
	Source     string      `json:"source"`
	Account    string      `json:"account"`
	Time       time.Time   `json:"time"`
	Region     string      `json:"region"`
	Resources  []string    `json:"resources"`
	Detail     AlarmDetail `json:"detail"`
}

// AlarmDetail is the part of the event that says which alarm moved where.
type AlarmDetail struct {
	AlarmName     string     `json:"alarmName"`
	State         AlarmState `json:"state"`
	PreviousState AlarmState `json:"previousState"`
}

// AlarmState is one side of the transition. Timestamp keeps CloudWatch's
// own text ("2026-11-21T10:00:00.000+0000") because it is part of the
// execution name and dedupe key; At is its parsed value.
type AlarmState struct {
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	Timestamp string    `json:"timestamp"`
	At        time.Time `json:"-"`
}

// ParseAlarmEvent decodes and validates an alarm state-change event. Every
// problem is an InvalidInput error naming the field at fault.
func ParseAlarmEvent(raw []byte) (AlarmEvent, error) {
	var ev AlarmEvent
	if len(strings.TrimSpace(string(raw))) == 0 {
		return ev, Invalid("alarm event: empty payload")
	}
	if err := checkSize("alarm event", raw); err != nil {
		return ev, err
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, Invalid("alarm event: not a valid EventBridge event: %v", err)
	}
	if ev.Source != AlarmSource {
		return ev, Invalid("alarm event: source is %q, want %q", ev.Source, AlarmSource)
	}
	if ev.DetailType != AlarmDetailType {
		return ev, Invalid("alarm event: detail-type is %q, want %q", ev.DetailType, AlarmDetailType)
	}
	if ev.Detail.AlarmName == "" {
		return ev, Invalid("alarm event: detail.alarmName is missing")
	}
	if err := checkTexts(
		text{"alarm event: detail.alarmName", ev.Detail.AlarmName, MaxAlarmNameLength},
		text{"alarm event: detail.state.reason", ev.Detail.State.Reason, MaxStateReason},
		text{"alarm event: detail.previousState.reason", ev.Detail.PreviousState.Reason, MaxStateReason},
		text{"alarm event: detail.state.timestamp", ev.Detail.State.Timestamp, maxAlarmFieldLength},
	); err != nil {
		return ev, err
	}
	switch ev.Detail.State.Value {
	case AlarmStateOK, AlarmStateAlarm, AlarmStateInsufficientData:
	case "":
		return ev, Invalid("alarm event: detail.state.value is missing")
	default:
		return ev, Invalid("alarm event: detail.state.value %q is not OK, ALARM or INSUFFICIENT_DATA", ev.Detail.State.Value)
	}
	at, err := parseAlarmTimestamp(ev.Detail.State.Timestamp)
	if err != nil {
		return ev, Invalid("alarm event: detail.state.timestamp: %v", err)
	}
	ev.Detail.State.At = at
	if ev.Detail.PreviousState.Timestamp != "" {
		if prev, err := parseAlarmTimestamp(ev.Detail.PreviousState.Timestamp); err == nil {
			ev.Detail.PreviousState.At = prev
		}
	}
	return ev, nil
}

func parseAlarmTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("missing")
	}
	for _, layout := range []string{alarmStateTimestampLayout, alarmStateTimestampLayoutNs, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a CloudWatch timestamp such as 2026-11-21T10:00:00.000+0000", s)
}

// Scheduled events: EventBridge's rate rule that runs the controller over
// every pool (the level-triggered guarantee behind the alarms' fast path).
const (
	ScheduleSource     = "aws.events"
	ScheduleDetailType = "Scheduled Event"
)

// IsScheduleEvent tells the controller's schedule from an alarm or an
// operator request by its envelope, without parsing the rest.
func IsScheduleEvent(raw []byte) bool {
	var env struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	return json.Unmarshal(raw, &env) == nil && env.Source == ScheduleSource && env.DetailType == ScheduleDetailType
}
