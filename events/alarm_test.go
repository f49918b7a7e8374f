package events

import (
	"strings"
	"testing"
	"time"
)

func TestParseAlarmEvent(t *testing.T) {
	valid := `{"source":"aws.cloudwatch","detail-type":"CloudWatch Alarm State Change","time":"2026-11-21T10:00:00Z",
		"detail":{"alarmName":"a","state":{"value":"ALARM","timestamp":"2026-11-21T10:00:00.123+0000"}}}`
	cases := []struct {
		name string
		raw  string
		want string
	}{
		{"a well-formed event parses", valid, ""},
		{"an empty payload is refused", "  ", "empty payload"},
		{"a JSON list is refused", "[1,2]", "not a valid EventBridge event"},
		{"another detail type is refused", strings.Replace(valid, "CloudWatch Alarm State Change", "EC2 Instance State-change Notification", 1), "detail-type"},
		{"an unknown state is refused", strings.Replace(valid, `"ALARM"`, `"RED"`, 1), `detail.state.value "RED"`},
		{"a missing state is refused", strings.Replace(valid, `"value":"ALARM",`, "", 1), "detail.state.value is missing"},
		{"a missing timestamp is refused", strings.Replace(valid, `,"timestamp":"2026-11-21T10:00:00.123+0000"`, "", 1), "detail.state.timestamp: missing"},
		{"an alarm name longer than CloudWatch allows is refused", strings.Replace(valid, `"alarmName":"a"`, `"alarmName":"`+strings.Repeat("a", 256)+`"`, 1), "detail.alarmName is 256 characters, more than 255"},
		{"a state reason longer than CloudWatch allows is refused", strings.Replace(valid, `"value":"ALARM"`, `"value":"ALARM","reason":"`+strings.Repeat("r", 1024)+`"`, 1), "detail.state.reason is 1024 characters, more than 1023"},
		{"an event larger than EventBridge allows is refused", strings.Replace(valid, `"time"`, `"padding":"`+strings.Repeat(" ", MaxEventBytes)+`","time"`, 1), "more than the 262144 an EventBridge event may have"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseAlarmEvent([]byte(tc.raw))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if want := time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC); !ev.Detail.State.At.Equal(want) {
					t.Fatalf("state time = %s, want %s", ev.Detail.State.At, want)
				}
				return
			}
			if _, ok := err.(*InvalidInput); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %T %v, want InvalidInput containing %q", err, err, tc.want)
			}
		})
	}
}
