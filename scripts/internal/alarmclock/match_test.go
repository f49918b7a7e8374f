package alarmclock

import "testing"

func TestEventPatternsMatchAsEventBridgeDoes(t *testing.T) {
	pattern := map[string]any{
		"source":      []any{"aws.cloudwatch"},
		"detail-type": []any{"CloudWatch Alarm State Change"},
		"detail":      map[string]any{"alarmName": []any{map[string]any{"prefix": "mediascale-dev-"}}},
	}
	event := func(source, alarm string) map[string]any {
		return map[string]any{"source": source, "detail-type": "CloudWatch Alarm State Change", "detail": map[string]any{"alarmName": alarm}}
	}
	cases := []struct {
		name  string
		event map[string]any
		want  bool
	}{
		{"a scaling alarm of the environment matches", event("aws.cloudwatch", "mediascale-dev-live-scale-out-cpu"), true},
		{"another environment's alarm does not", event("aws.cloudwatch", "mediascale-prod-live-scale-out-cpu"), false},
		{"another source does not", event("aws.ec2", "mediascale-dev-live-scale-out-cpu"), false},
		{"an event without the field does not", map[string]any{"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Matches(pattern, tc.event); got != tc.want {
				t.Fatalf("matches = %v", got)
			}
		})
	}
}
