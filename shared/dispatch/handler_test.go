package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden answers in testevents/dispatch/expected")

// fakeNodes is the node store: it records every read and answers with
// its nodes or its error.
type fakeNodes struct {
	nodes []fleet.Node
	err   error
	reads []string
}

func (f *fakeNodes) ListNodes(_ context.Context, p string) ([]fleet.Node, error) {
	f.reads = append(f.reads, p)
	if f.err != nil {
		return nil, f.err
	}
	return f.nodes, nil
}

// classedPool is livePool with the shipped classes: viewers to 100 % of
// the thresholds, premium to 115 %, publishers to 133 %.
func classedPool() pool.Pool {
	p := livePool()
	p.Region, p.Media, p.Probe.MediaPort = "us-east-1", pool.MediaRTMP, 1935
	p.Admission = pool.Admission{RetryAfter: pool.Duration(5 * time.Second), Classes: []pool.Class{
		{Name: "publisher", CeilingPercent: 133}, {Name: "premium", CeilingPercent: 115}, {Name: "viewer", CeilingPercent: 100}}}
	return p
}

func request(method, path, query string) lambdaevents.LambdaFunctionURLRequest {
	r := lambdaevents.LambdaFunctionURLRequest{Version: "2.0", RawPath: path, RawQueryString: query}
	r.RequestContext.HTTP.Method = method
	return r
}

func newTestHandler(nodes NodeLister, clock *time.Time, logs io.Writer) *Handler {
	return NewHandler(pool.File{Environment: "dev", Pools: []pool.Pool{classedPool()}}, nodes, nil, func() time.Time { return *clock },
		slog.New(slog.NewJSONHandler(logs, nil)))
}

func TestHandle(t *testing.T) {
	// n1 at 50 % (750 sessions), n2 at 110 %, n3 at 120 %.
	room := []fleet.Node{serving("n1", fleet.Active, 750, 10), serving("n2", fleet.Active, 1650, 10), serving("n3", fleet.Active, 1800, 10)}
	full := []fleet.Node{serving("n2", fleet.Active, 1650, 10), serving("n3", fleet.Active, 1800, 10)}
	cases := []struct {
		name         string
		nodes        []fleet.Node
		method, path string
		query        string
		status       int
		want         string
	}{
		{"a session goes to the node with the most room", room, "GET", Route, "pool=live&class=viewer", 200, `"node":"n1"`},
		{"the answer carries the media URL of the pool's protocol", room, "GET", Route, "pool=live&class=viewer", 200, `"url":"rtmp://127.0.0.1:1935/"`},
		{"viewers are refused when every node is past their ceiling", full, "GET", Route, "pool=live&class=viewer", 503, `"error":"Refused"`},
		{"premium viewers still get a node below their ceiling", full, "GET", Route, "pool=live&class=premium", 200, `"node":"n2"`},
		{"publishers get the busier node too while under their ceiling", full[1:], "GET", Route, "pool=live&class=publisher", 200, `"node":"n3"`},
		{"a pool with no healthy node refuses", nil, "GET", Route, "pool=live&class=publisher", 503, "no healthy serving node"},
		{"an unknown pool is 404", room, "GET", Route, "pool=vod&class=viewer", 404, `"error":"UnknownPool"`},
		{"a missing pool is 400", room, "GET", Route, "class=viewer", 400, "parameter pool is required"},
		{"a missing class is 400 when the pool has classes", room, "GET", Route, "pool=live", 400, "class is required for pool live: one of publisher, premium, viewer"},
		{"an unknown class is 400", room, "GET", Route, "pool=live&class=vip", 400, `has no class \"vip\"`},
		{"a misspelt parameter is 400", room, "GET", Route, "pool=live&clas=viewer", 400, `unknown parameter \"clas\"`},
		{"a repeated parameter is 400", room, "GET", Route, "pool=live&pool=vod&class=viewer", 400, "given 2 times"},
		{"a query that does not parse is 400", room, "GET", Route, "pool=%zz", 400, "does not parse"},
		{"another path is 404", room, "GET", "/v1/sessions", "pool=live", 404, "no route /v1/sessions"},
		{"another method is 405", room, "POST", Route, "pool=live&class=viewer", 405, "only GET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := now
			h := newTestHandler(&fakeNodes{nodes: tc.nodes}, &clock, io.Discard)
			res, err := h.Handle(context.Background(), request(tc.method, tc.path, tc.query))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || !strings.Contains(res.Body, tc.want) {
				t.Fatalf("got %d %s; want %d with %s", res.StatusCode, res.Body, tc.status, tc.want)
			}
			if res.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(res.Body)) {
				t.Fatalf("answer is not JSON: %v %s", res.Headers, res.Body)
			}
			if tc.status == 503 && res.Headers["Retry-After"] != "5" {
				t.Fatalf("a refusal without the pool's Retry-After: %v", res.Headers)
			}
		})
	}
}

func TestAPoolWithoutClassesAdmitsItsDefaultClassUpToTheMediaServersLimit(t *testing.T) {
	p := livePool()
	p.Deploy.Parameters = map[string]string{"maxConnections": "2000"}
	// 1900 sessions is 127 % of the 1500 threshold, under the 133 % limit.
	nodes := &fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 1900, 10)}}
	h := NewHandler(pool.File{Pools: []pool.Pool{p}}, nodes, nil, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	for _, q := range []string{"pool=live", "pool=live&class=default"} {
		res, _ := h.Handle(context.Background(), request("GET", Route, q))
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q, res.StatusCode, res.Body)
		}
	}
	nodes.nodes[0].Heartbeat.Load.Connections = 2000
	h = NewHandler(pool.File{Pools: []pool.Pool{p}}, nodes, nil, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if res, _ := h.Handle(context.Background(), request("GET", Route, "pool=live")); res.StatusCode != 503 {
		t.Fatalf("a node at its media server's limit took a session: %d %s", res.StatusCode, res.Body)
	}
}

func TestTheTableIsReadAtMostOnceASecondPerPool(t *testing.T) {
	nodes := &fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 0, 0), serving("n2", fleet.Active, 0, 0)}}
	clock := now
	h := newTestHandler(nodes, &clock, io.Discard)
	for i := 0; i < 500; i++ {
		clock = now.Add(time.Duration(i) * 4 * time.Millisecond)
		if res, _ := h.Handle(context.Background(), request("GET", Route, "pool=live&class=viewer")); res.StatusCode != 200 {
			t.Fatalf("session %d: %d %s", i, res.StatusCode, res.Body)
		}
	}
	// 500 sessions over 2 s: reads at 0 s, 1 s and 2 s at most.
	if len(nodes.reads) > 3 {
		t.Fatalf("%d reads of the table for 500 sessions in 2 s", len(nodes.reads))
	}
}

func TestAFailedReadServesFromTheLastSnapshotWhileItsHeartbeatsAreFresh(t *testing.T) {
	nodes := &fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 0, 0)}}
	clock := now
	h := newTestHandler(nodes, &clock, io.Discard)
	if res, _ := h.Handle(context.Background(), request("GET", Route, "pool=live&class=viewer")); res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, res.Body)
	}
	nodes.err = &types.ProvisionedThroughputExceededException{Message: strPtr("Rate of requests exceeds the allowed throughput.")}
	clock = now.Add(5 * time.Second)
	for i := 0; i < 10; i++ {
		clock = clock.Add(50 * time.Millisecond)
		if res, _ := h.Handle(context.Background(), request("GET", Route, "pool=live&class=viewer")); res.StatusCode != 200 {
			t.Fatalf("a throttled read 5 s after a good one: %d %s", res.StatusCode, res.Body)
		}
	}
	if len(nodes.reads) != 2 {
		t.Fatalf("%d reads: a throttled table was asked again within the second", len(nodes.reads))
	}
	// The agents report every 10 s; after three intervals the snapshot
	// says nothing about the nodes any more.
	clock = now.Add(31 * time.Second)
	res, _ := h.Handle(context.Background(), request("GET", Route, "pool=live&class=viewer"))
	if res.StatusCode != 503 || !strings.Contains(res.Body, `"error":"Unavailable"`) || res.Headers["Retry-After"] != "1" {
		t.Fatalf("a throttled read with only a 31 s old snapshot: %d %v %s", res.StatusCode, res.Headers, res.Body)
	}
}

func TestEveryAnswerIsOneLogLineThatCountsIt(t *testing.T) {
	var logs bytes.Buffer
	clock := now
	h := newTestHandler(&fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 1600, 10)}}, &clock, &logs)
	for _, class := range []string{"viewer", "premium"} {
		_, _ = h.Handle(context.Background(), request("GET", Route, "pool=live&class="+class))
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines for two requests:\n%s", len(lines), logs.String())
	}
	for i, want := range []struct {
		msg, class          string
		dispatched, refused float64
	}{{"refused", "viewer", 0, 1}, {"dispatched", "premium", 1, 0}} {
		var line map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &line); err != nil {
			t.Fatal(err)
		}
		aws, _ := line["_aws"].(map[string]any)
		if line["msg"] != want.msg || line["Class"] != want.class || line["Pool"] != "live" || line[telemetry.SessionsDispatched] != want.dispatched ||
			line[telemetry.SessionsRefused] != want.refused || aws == nil {
			t.Fatalf("line %d: %s", i, lines[i])
		}
	}
}

func TestSampleEventsGetTheirGoldenAnswers(t *testing.T) {
	dir := filepath.Join("..", "..", "testevents", "dispatch")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatal("no sample events in testevents/dispatch")
	}
	// Three nodes far apart, so the choice is not left to chance.
	nodes := &fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 750, 10), serving("n2", fleet.Active, 1650, 10), serving("n3", fleet.Active, 1800, 10)}}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var req lambdaevents.LambdaFunctionURLRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			clock := now
			res, err := newTestHandler(nodes, &clock, io.Discard).Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(res, "", "  ")
			golden := filepath.Join(dir, "expected", filepath.Base(file))
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./shared/dispatch -update to write it)", err)
			}
			if string(bytes.TrimSpace(want)) != string(got) {
				t.Fatalf("answer differs from %s:\n%s", golden, got)
			}
		})
	}
}

func strPtr(s string) *string { return &s }

func TestSessionsHandedOutSinceANodesLastReportStillCountAfterTheNextRead(t *testing.T) {
	// Both agents last reported 5 s ago; n2 had 600 sessions then, n1
	// none.
	n1, n2 := serving("n1", fleet.Active, 0, 0), serving("n2", fleet.Active, 600, 0)
	nodes := &fakeNodes{nodes: []fleet.Node{n1, n2}}
	clock := now
	h := newTestHandler(nodes, &clock, io.Discard)
	got := map[string]int{"n2": 600}
	for i := 0; i < 2000; i++ {
		// 250 sessions a second for 8 s: the table is read again every
		// second, and no agent reports in between.
		clock = now.Add(time.Duration(i) * 4 * time.Millisecond)
		res, _ := h.Handle(context.Background(), request("GET", Route, "pool=live&class=premium"))
		var a Answer
		if err := json.Unmarshal([]byte(res.Body), &a); err != nil || res.StatusCode != 200 {
			t.Fatalf("session %d: %d %s", i, res.StatusCode, res.Body)
		}
		got[a.Node]++
	}
	if len(nodes.reads) < 8 {
		t.Fatalf("%d reads in 8 s", len(nodes.reads))
	}
	// 2600 sessions in all: 1300 each, give or take the near-equal band
	// of 75 sessions.
	if d := got["n1"] - got["n2"]; d < -100 || d > 100 {
		t.Fatalf("sessions per node, counting n2's 600 reported: %v; each read forgot what it had handed out", got)
	}
}
