package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mediascale/mediascale/events"
)

// atFlag is the --at of invoke and replay: the state-change time a sample
// alarm event is sent with. Samples carry a fixed time, and the trigger
// refuses a state change older than EventBridge would still deliver
// (events.MaxAlarmAge), as AWS would never send one.
const atUsage = `state-change time to send a sample alarm event with: "now", "now+20m", an RFC 3339 time, or "keep" for the file's own`

// stampAt turns an --at value into a time; keep is false for "keep".
func stampAt(v string, now time.Time) (at time.Time, keep bool, err error) {
	switch {
	case v == "keep":
		return time.Time{}, true, nil
	case v == "now":
		return now, false, nil
	case len(v) > 4 && v[:4] == "now+":
		d, err := time.ParseDuration(v[4:])
		return now.Add(d), false, err
	}
	at, err = time.Parse(time.RFC3339Nano, v)
	return at, false, err
}

// restamp gives a valid alarm state-change event the time at (its
// detail.state.timestamp, in CloudWatch's layout, and its envelope time).
// Anything else, including a malformed alarm event, is returned as it is,
// so refused samples stay refused.
func restamp(raw []byte, at time.Time) ([]byte, error) {
	if _, err := events.ParseAlarmEvent(raw); err != nil {
		return raw, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return raw, nil
	}
	detail, _ := ev["detail"].(map[string]any)
	state, _ := detail["state"].(map[string]any)
	if state == nil {
		return raw, nil
	}
	state["timestamp"] = at.UTC().Format("2006-01-02T15:04:05.000-0700")
	ev["time"] = at.UTC().Format(time.RFC3339)
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("restamping the event: %w", err)
	}
	return out, nil
}

// stamped applies an --at value to an event.
func stamped(raw []byte, at string) ([]byte, error) {
	t, keep, err := stampAt(at, time.Now())
	if err != nil {
		return nil, fmt.Errorf("--at %q: %w", at, err)
	}
	if keep {
		return raw, nil
	}
	return restamp(raw, t)
}
