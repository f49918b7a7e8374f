package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// fakeRegions opens fallbacks from a map; a fallback it lacks is a
// missing parameter, as in a region where that stack is not deployed.
type fakeRegions struct {
	pools map[pool.Fallback]pool.Pool
	nodes map[pool.Fallback]*fakeNodes
	opens []pool.Fallback
}

func (f *fakeRegions) OpenFallback(_ context.Context, fb pool.Fallback) (pool.Pool, NodeLister, error) {
	f.opens = append(f.opens, fb)
	p, ok := f.pools[fb]
	if !ok {
		return pool.Pool{}, nil, &ssmtypes.ParameterNotFound{Message: strPtr("parameter /mediascale/" + fb.Environment + "/pools not found")}
	}
	return p, f.nodes[fb], nil
}

var (
	west = pool.Fallback{Region: "us-west-2", Environment: "devusw2", Pool: "live-usw2"}
	euro = pool.Fallback{Region: "eu-west-1", Environment: "deveuw1", Pool: "live-euw1"}
)

// remotePool is classedPool deployed in the fallback's region.
func remotePool(f pool.Fallback) pool.Pool {
	p := classedPool()
	p.Name, p.Region = f.Pool, f.Region
	return p
}

// remoteNode is a serving node of a fallback pool.
func remoteNode(f pool.Fallback, id string, conns float64) fleet.Node {
	n := serving(id, fleet.Active, conns, 10)
	n.Pool, n.Endpoint = f.Pool, "127.0.1."+strings.TrimPrefix(id, "w")
	return n
}

// spillHandler is the dispatcher of classedPool, full for viewers (its one
// node at 110 %), falling back on west and then euro.
func spillHandler(regions *fakeRegions, clock *time.Time, logs io.Writer) (*Handler, *fakeNodes) {
	p := classedPool()
	p.Admission.Fallbacks = []pool.Fallback{west, euro}
	local := &fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 1650, 10)}}
	return NewHandler(pool.File{Environment: "dev", Pools: []pool.Pool{p}}, local, regions, func() time.Time { return *clock },
		slog.New(slog.NewJSONHandler(logs, nil))), local
}

func dispatchOnce(t *testing.T, h *Handler, class string) (int, Answer, Problem) {
	t.Helper()
	res, err := h.Handle(context.Background(), request("GET", Route, "pool=live&class="+class))
	if err != nil {
		t.Fatal(err)
	}
	var a Answer
	var p Problem
	if res.StatusCode == 200 {
		err = json.Unmarshal([]byte(res.Body), &a)
	} else {
		err = json.Unmarshal([]byte(res.Body), &p)
	}
	if err != nil {
		t.Fatalf("%d %s: %v", res.StatusCode, res.Body, err)
	}
	return res.StatusCode, a, p
}

func TestSpillover(t *testing.T) {
	cases := []struct {
		name      string
		west      []fleet.Node
		openWest  bool
		euro      []fleet.Node
		class     string
		status    int
		pool      string
		reasonHas []string
	}{
		{"a viewer the pool refuses goes to the first fallback with room", []fleet.Node{remoteNode(west, "w1", 300)}, true,
			[]fleet.Node{remoteNode(euro, "w2", 0)}, "viewer", 200, "live-usw2", nil},
		{"a full first fallback passes the viewer to the next", []fleet.Node{remoteNode(west, "w1", 1700)}, true,
			[]fleet.Node{remoteNode(euro, "w2", 0)}, "viewer", 200, "live-euw1", nil},
		{"a fallback whose stack cannot be read is passed over", nil, false,
			[]fleet.Node{remoteNode(euro, "w2", 0)}, "viewer", 200, "live-euw1", nil},
		{"a class the pool still admits stays in its region", []fleet.Node{remoteNode(west, "w1", 0)}, true,
			nil, "premium", 200, "live", nil},
		{"when every fallback is full too the refusal says why for each", []fleet.Node{remoteNode(west, "w1", 1700)}, true,
			nil, "viewer", 503, "", []string{"every node of pool live is at or above 100%", "fallback devusw2/live-usw2 (us-west-2): every node of pool live-usw2",
				"fallback deveuw1/live-euw1 (eu-west-1): pool live-euw1 has no healthy serving node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			regions := &fakeRegions{pools: map[pool.Fallback]pool.Pool{euro: remotePool(euro)},
				nodes: map[pool.Fallback]*fakeNodes{west: {nodes: tc.west}, euro: {nodes: tc.euro}}}
			if tc.openWest {
				regions.pools[west] = remotePool(west)
			}
			clock := now
			h, _ := spillHandler(regions, &clock, io.Discard)
			status, a, p := dispatchOnce(t, h, tc.class)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %+v %+v", status, tc.status, a, p)
			}
			for _, want := range tc.reasonHas {
				if !strings.Contains(p.Reason, want) {
					t.Fatalf("reason %q lacks %q", p.Reason, want)
				}
			}
			if status != 200 {
				return
			}
			if a.Pool != tc.pool {
				t.Fatalf("went to pool %s, want %s: %+v", a.Pool, tc.pool, a)
			}
			if tc.pool == "live" {
				if a.SpilledFrom != "" || len(regions.opens) != 0 {
					t.Fatalf("a session the pool took was spilled or a fallback opened: %+v, opens %v", a, regions.opens)
				}
				return
			}
			if a.SpilledFrom != "live" || a.Region == "us-east-1" || !strings.HasPrefix(a.URL, "rtmp://127.0.1.") || !strings.Contains(a.SpillReason, "at or above 100%") {
				t.Fatalf("spilled answer without its region, origin or reason: %+v", a)
			}
		})
	}
}

func TestASpilledSessionIsRefusedDemandOnItsPoolAndCountedAsSpilled(t *testing.T) {
	var logs bytes.Buffer
	regions := &fakeRegions{pools: map[pool.Fallback]pool.Pool{west: remotePool(west)},
		nodes: map[pool.Fallback]*fakeNodes{west: {nodes: []fleet.Node{remoteNode(west, "w1", 0)}}}}
	clock := now
	h, _ := spillHandler(regions, &clock, &logs)
	dispatchOnce(t, h, "viewer")
	dispatchOnce(t, h, "premium")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var got []map[string]any
	for _, l := range lines {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		if _, ok := line["_aws"]; ok {
			got = append(got, line)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d metric lines for two sessions:\n%s", len(got), logs.String())
	}
	spilled, kept := got[0], got[1]
	if spilled["msg"] != "spilled" || spilled[telemetry.SessionsRefused] != 1.0 || spilled[telemetry.SessionsSpilled] != 1.0 || spilled[telemetry.SessionsDispatched] != 0.0 ||
		spilled["fallbackRegion"] != "us-west-2" || spilled["fallbackPool"] != "live-usw2" || spilled["Pool"] != "live" {
		t.Fatalf("spilled line: %v", spilled)
	}
	if kept["msg"] != "dispatched" || kept[telemetry.SessionsSpilled] != 0.0 || kept[telemetry.SessionsDispatched] != 1.0 {
		t.Fatalf("dispatched line: %v", kept)
	}
}

func TestAFallbacksTableIsReadAtMostOnceASecondAndAStackNotFoundIsNotAskedAgainAtOnce(t *testing.T) {
	westNodes := &fakeNodes{nodes: []fleet.Node{remoteNode(west, "w1", 0), remoteNode(west, "w2", 0)}}
	regions := &fakeRegions{pools: map[pool.Fallback]pool.Pool{west: remotePool(west)}, nodes: map[pool.Fallback]*fakeNodes{west: westNodes}}
	p := classedPool()
	// euro first: it is not deployed.
	p.Admission.Fallbacks = []pool.Fallback{euro, west}
	clock := now
	h := NewHandler(pool.File{Environment: "dev", Pools: []pool.Pool{p}}, &fakeNodes{}, regions, func() time.Time { return clock }, slog.New(slog.DiscardHandler))
	for i := 0; i < 500; i++ {
		clock = now.Add(time.Duration(i) * 4 * time.Millisecond)
		status, a, pr := dispatchOnce(t, h, "viewer")
		if status != 200 || a.Pool != "live-usw2" {
			t.Fatalf("session %d: %d %+v %+v", i, status, a, pr)
		}
	}
	// 500 sessions over 2 s: west's table read at 0, 1 and 2 s; euro
	// tried once and then again only after Reopen.
	if len(westNodes.reads) > 3 {
		t.Fatalf("%d reads of the fallback's table for 500 sessions in 2 s", len(westNodes.reads))
	}
	opens := map[pool.Fallback]int{}
	for _, f := range regions.opens {
		opens[f]++
	}
	if opens[euro] != 1 || opens[west] != 1 {
		t.Fatalf("opens in 2 s: %v", opens)
	}
	clock = now.Add(Reopen + time.Second)
	dispatchOnce(t, h, "viewer")
	if got := len(regions.opens); got != 3 {
		t.Fatalf("%d opens after Reopen; the undeployed fallback should be tried once more", got)
	}
}

func TestASessionSpillsWhenThePoolsOwnNodesCannotBeRead(t *testing.T) {
	regions := &fakeRegions{pools: map[pool.Fallback]pool.Pool{west: remotePool(west)},
		nodes: map[pool.Fallback]*fakeNodes{west: {nodes: []fleet.Node{remoteNode(west, "w1", 0)}}}}
	clock := now
	h, local := spillHandler(regions, &clock, io.Discard)
	local.err = &types.InternalServerError{Message: strPtr("Internal server error")}
	status, a, p := dispatchOnce(t, h, "publisher")
	if status != 200 || a.Pool != "live-usw2" || !strings.Contains(a.SpillReason, "reading nodes of pool live") {
		t.Fatalf("%d %+v %+v", status, a, p)
	}
}

func TestAFallbackWithoutTheSessionsClassIsPassedOver(t *testing.T) {
	classless := remotePool(west)
	classless.Admission.Classes = nil
	regions := &fakeRegions{pools: map[pool.Fallback]pool.Pool{west: classless},
		nodes: map[pool.Fallback]*fakeNodes{west: {nodes: []fleet.Node{remoteNode(west, "w1", 0)}}}}
	clock := now
	h, _ := spillHandler(regions, &clock, io.Discard)
	status, _, p := dispatchOnce(t, h, "viewer")
	if status != 503 || !strings.Contains(p.Reason, `pool live-usw2 has no class "viewer"`) {
		t.Fatalf("%d %+v", status, p)
	}
}
