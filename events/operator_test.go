package events

import (
	"strings"
	"testing"
)

func TestParseOperatorEventBoundsEveryField(t *testing.T) {
	valid := `{"source":"mediascale.operator","detail-type":"Scale Request","detail":{"pool":"live-rtmp-use1","direction":"out","count":2,"operator":"sre","reason":"show"}}`
	cases := []struct {
		name string
		raw  string
		want string
	}{
		{"a well-formed request parses", valid, ""},
		{"an unknown field is refused", strings.Replace(valid, `"count":2`, `"count":2,"force":true`, 1), `unknown field "force"`},
		{"a count beyond any pool is refused", strings.Replace(valid, `"count":2`, `"count":1001`, 1), "detail.count 1001 is more than 1000"},
		{"an operator name of 10,000 characters is refused", strings.Replace(valid, `"operator":"sre"`, `"operator":"`+strings.Repeat("o", 10000)+`"`, 1), "detail.operator is 10000 characters, more than 128"},
		{"a reason longer than 1024 characters is refused", strings.Replace(valid, `"reason":"show"`, `"reason":"`+strings.Repeat("r", 1025)+`"`, 1), "detail.reason is 1025 characters, more than 1024"},
		{"a pool name longer than any pool's is refused", strings.Replace(valid, `"pool":"live-rtmp-use1"`, `"pool":"`+strings.Repeat("p", 65)+`"`, 1), "detail.pool is 65 characters, more than 64"},
		{"a 1 MB request is refused before it is decoded", strings.Replace(valid, `"reason":"show"`, `"reason":"`+strings.Repeat("r", 1<<20)+`"`, 1), "more than the 262144 an EventBridge event may have"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseOperatorEvent([]byte(tc.raw))
			if tc.want == "" {
				if err != nil || r.Count != 2 || r.Operator != "sre" {
					t.Fatalf("request %+v, %v", r, err)
				}
				return
			}
			if _, ok := err.(*InvalidInput); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %T %v, want InvalidInput containing %q", err, err, tc.want)
			}
		})
	}
}
