package events

import "unicode/utf8"

// Limits on outside input (README.md, "Input limits"). Beyond them an event
// is InvalidInput naming the limit, and nothing is written. They follow
// AWS's own: EventBridge events are at most 256 KB, CloudWatch alarm names
// 255 characters and state reasons 1023.
const (
	MaxEventBytes       = 256 * 1024
	MaxAlarmNameLength  = 255
	MaxStateReason      = 1023
	MaxPoolNameLength   = 64
	MaxOperatorLength   = 128
	MaxOperatorReason   = 1024
	MaxOperatorCount    = 1000
	maxAlarmFieldLength = 64
)

// checkSize refuses an event larger than EventBridge allows.
func checkSize(what string, raw []byte) error {
	if len(raw) > MaxEventBytes {
		return Invalid("%s: %d bytes, more than the %d an EventBridge event may have", what, len(raw), MaxEventBytes)
	}
	return nil
}

// checkText refuses a text field longer than max characters. (JSON
// decoding has already turned invalid UTF-8 into U+FFFD.)
func checkText(field, s string, max int) error {
	if n := utf8.RuneCountInString(s); n > max {
		return Invalid("%s is %d characters, more than %d", field, n, max)
	}
	return nil
}
