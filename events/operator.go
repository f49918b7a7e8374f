package events

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Operator requests reach the trigger in an EventBridge-shaped envelope, so
// they can come from `make scale`, the CLI, or a rule on a custom bus.
const (
	OperatorSource     = "mediascale.operator"
	OperatorDetailType = "Scale Request"
)

// OperatorRequest asks for a manual scaling step that goes through the same
// workflow, lock and guards as an alarm.
type OperatorRequest struct {
	Pool      string `json:"pool"`
	Direction string `json:"direction"`
	Count     int    `json:"count"`
	DryRun    bool   `json:"dryRun"`
	Operator  string `json:"operator"`
	Reason    string `json:"reason"`
}

// IsOperatorEvent tells an operator request from an alarm event by its
// source, without parsing the rest.
func IsOperatorEvent(raw []byte) bool {
	var env struct {
		Source string `json:"source"`
	}
	return json.Unmarshal(raw, &env) == nil && env.Source == OperatorSource
}

// ParseOperatorEvent decodes and checks an operator request strictly.
func ParseOperatorEvent(raw []byte) (OperatorRequest, error) {
	var env struct {
		Source     string          `json:"source"`
		DetailType string          `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := checkSize("operator request", raw); err != nil {
		return OperatorRequest{}, err
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return OperatorRequest{}, Invalid("operator request: %v", err)
	}
	if env.DetailType != OperatorDetailType {
		return OperatorRequest{}, Invalid("operator request: detail-type is %q, want %q", env.DetailType, OperatorDetailType)
	}
	dec := json.NewDecoder(bytes.NewReader(env.Detail))
	dec.DisallowUnknownFields()
	var r OperatorRequest
	if err := dec.Decode(&r); err != nil {
		return OperatorRequest{}, Invalid("operator request: detail: %v", err)
	}
	switch {
	case r.Pool == "":
		return r, Invalid("operator request: detail.pool is missing")
	case r.Direction != DirectionOut && r.Direction != DirectionIn:
		return r, Invalid("operator request: detail.direction is %q, want out or in", r.Direction)
	case r.Count < 1:
		return r, Invalid("operator request: detail.count must be at least 1, got %d", r.Count)
	case r.Count > MaxOperatorCount:
		return r, Invalid("operator request: detail.count %d is more than %d", r.Count, MaxOperatorCount)
	case strings.TrimSpace(r.Operator) == "":
		return r, Invalid("operator request: detail.operator is missing: say who asks")
	}
	if err := checkTexts(
		text{"operator request: detail.pool", r.Pool, MaxPoolNameLength},
		text{"operator request: detail.operator", r.Operator, MaxOperatorLength},
		text{"operator request: detail.reason", r.Reason, MaxOperatorReason},
	); err != nil {
		return r, err
	}
	return r, nil
}
