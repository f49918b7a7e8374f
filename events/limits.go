package events

import (
	"time"
	"unicode/utf8"
)

// Limits on outside input (README.md, "Input limits"). Beyond them an event
// is InvalidInput naming the limit, and nothing is written. They follow
// AWS's own: EventBridge events are at most 256 KB, CloudWatch alarm names
// 255 characters and state reasons 1023, and EventBridge retries a delivery
// for at most 24 hours.
const (
	MaxEventBytes      = 256 * 1024
	MaxAlarmNameLength = 255
	MaxStateReason     = 1023
	MaxPoolNameLength  = 64
	MaxOperatorLength  = 128
	MaxOperatorReason  = 1024
	MaxOperatorCount   = 1000
	// MaxExecutionNameLength is Step Functions' limit on an execution's
	// name.
	MaxExecutionNameLength = 80
	MaxAlarmAge            = 25 * time.Hour
	MaxAlarmClockSkew      = 15 * time.Minute
	maxAlarmFieldLength    = 64
)

// checkSize refuses an event larger than EventBridge allows.
func checkSize(what string, raw []byte) error {
	if len(raw) > MaxEventBytes {
		return Invalid("%s: %d bytes, more than the %d an EventBridge event may have", what, len(raw), MaxEventBytes)
	}
	return nil
}

// text is a text field with its name and its longest length.
type text struct {
	field, value string
	max          int
}

// checkTexts refuses the first field longer than its max characters. (JSON
// decoding has already turned invalid UTF-8 into U+FFFD.)
func checkTexts(fields ...text) error {
	for _, f := range fields {
		if n := utf8.RuneCountInString(f.value); n > f.max {
			return Invalid("%s is %d characters, more than %d", f.field, n, f.max)
		}
	}
	return nil
}

// CheckAlarmTime refuses a state change older than EventBridge would still
// deliver, or later than now beyond clock skew: a replayed or forged event
// (year 0000 or 9999) must not start a real execution.
func CheckAlarmTime(ev AlarmEvent, now time.Time) error {
	at := ev.Detail.State.At
	switch {
	case at.Before(now.Add(-MaxAlarmAge)):
		return Invalid("alarm event: detail.state.timestamp %s is more than %s before now (%s): EventBridge no longer delivers it",
			ev.Detail.State.Timestamp, MaxAlarmAge, now.UTC().Format(time.RFC3339))
	case at.After(now.Add(MaxAlarmClockSkew)):
		return Invalid("alarm event: detail.state.timestamp %s is more than %s after now (%s)",
			ev.Detail.State.Timestamp, MaxAlarmClockSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}
