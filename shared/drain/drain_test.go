package drain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
	"github.com/mediascale/mediascale/shared/traffic"
)

type fakeWeights struct {
	mu      sync.Mutex
	removed []string
	set     map[string]int
	// failRemove is returned once by the next Remove.
	failRemove error
}

func (f *fakeWeights) SetWeight(_ context.Context, _ pool.Pool, node, _ string, w int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[node] = w
	return nil
}

func (f *fakeWeights) Remove(_ context.Context, _ pool.Pool, node, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failRemove; err != nil {
		f.failRemove = nil
		return err
	}
	f.removed = append(f.removed, node)
	return nil
}

// throttledStore answers every Transition with DynamoDB's throttle, as a
// table does for a whole bad minute.
type throttledStore struct{ *fleettest.Memory }

func (throttledStore) Transition(context.Context, string, string, fleet.State, int64, fleet.State, fleet.Change) (fleet.Node, error) {
	return fleet.Node{}, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate of requests exceeds the allowed throughput."}
}

type fakeCommands struct{ documents []string }

func (f *fakeCommands) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.documents = append(f.documents, aws.ToString(in.DocumentName))
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(fmt.Sprintf("cmd-%d", len(f.documents)))}}, nil
}

type fakeInstances struct{ terminated []string }

func (f *fakeInstances) Terminate(_ context.Context, id string) error {
	f.terminated = append(f.terminated, id)
	return nil
}

// clock is a settable clock for deadlines.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type rig struct {
	h     *Handler
	store *fleettest.Memory
	w     *fakeWeights
	cmds  *fakeCommands
	inst  *fakeInstances
	clk   *clock
	node  *medianode.Nginx
}

func newRig(t *testing.T) *rig {
	t.Helper()
	node := medianode.StartForTest(t)
	doc, _ := json.Marshal(map[string]any{"default": health.Endpoint{Host: node.Host, HealthPort: node.HealthPort, MediaPort: node.MediaPort}})
	path := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(health.EnvLocalEndpoints, path)
	p := pool.Pool{Name: "live", Traffic: pool.Traffic{Mode: pool.TrafficRoute53},
		Deploy: pool.Deploy{Document: "media-rtmp"}, Drain: pool.Drain{Timeout: pool.Duration(10 * time.Minute)}}
	r := &rig{
		store: fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", State: fleet.Active, Execution: "out-1", InstanceID: "i-1", Weight: 100, PrivateIP: "10.40.0.9"}),
		w:     &fakeWeights{set: map[string]int{}}, cmds: &fakeCommands{}, inst: &fakeInstances{},
		clk: &clock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}, node: node,
	}
	// The scale-in holds the pool, as the trigger that started it took it.
	r.store.Locks = map[string]string{"live": "in-1"}
	r.h = NewHandler(func(string) (traffic.Weights, error) { return r.w, nil }, r.cmds, health.Sessioner{HTTP: &http.Client{Timeout: time.Second}},
		r.inst, r.store, pool.File{Environment: "dev", Pools: []pool.Pool{p}}, "nodes", r.clk.Now, telemetry.NewLogger(io.Discard, "drain"))
	return r
}

func (r *rig) do(t *testing.T, action string) Result {
	t.Helper()
	raw, _ := json.Marshal(Request{Action: action, Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "in-1"}})
	res, err := r.h.Handle()(context.Background(), raw)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return res
}

// waitForSessions waits, bounded, until the real node reports n sessions.
func (r *rig) waitForSessions(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if c, _, err := health.Sessions(context.Background(), &http.Client{Timeout: time.Second}, health.Endpoint{Host: r.node.Host, HealthPort: r.node.HealthPort}); err == nil && c == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the node never reported %d sessions", n)
}

func TestANodeWithoutSessionsGoesAtOnce(t *testing.T) {
	r := newRig(t)
	r.do(t, ActionStart)
	if n := r.store.Node("live", "n-1"); n.State != fleet.Draining || n.Weight != 0 || n.Execution != "in-1" || len(r.w.removed) != 1 {
		t.Fatalf("after start: %+v, records removed %v", n, r.w.removed)
	}
	if len(r.cmds.documents) != 1 || r.cmds.documents[0] != "media-rtmp-drain" {
		t.Fatalf("commands sent %v, want the drain document", r.cmds.documents)
	}
	if res := r.do(t, ActionCheck); !res.Drained || res.Sessions != 0 || res.Forced != 0 {
		t.Fatalf("check on an idle node: %+v", res)
	}
	res := r.do(t, ActionFinish)
	n := r.store.Node("live", "n-1")
	if res.State != "TERMINATED" || n.State != fleet.Terminated || n.ForcedSessions == nil || *n.ForcedSessions != 0 || len(r.inst.terminated) != 1 {
		t.Fatalf("after finish: %+v, node %+v, terminated %v", res, n, r.inst.terminated)
	}
}

func TestANodeWithOpenSessionsIsNotTerminatedBeforeTheyEndOrTheTimeout(t *testing.T) {
	r := newRig(t)
	r.node.Publish(t, "show", 60)
	r.waitForSessions(t, 1)
	r.do(t, ActionStart)
	if res := r.do(t, ActionCheck); res.Drained || res.Sessions != 1 {
		t.Fatalf("a node with a live session drained: %+v", res)
	}
	r.clk.now = r.clk.now.Add(9 * time.Minute)
	if res := r.do(t, ActionCheck); res.Drained {
		t.Fatalf("drained a minute before the timeout: %+v", res)
	}
	if len(r.inst.terminated) != 0 {
		t.Fatal("an instance was terminated while its session was live")
	}
	r.clk.now = r.clk.now.Add(2 * time.Minute)
	res := r.do(t, ActionCheck)
	if !res.Drained || res.Forced != 1 || res.Sessions != 1 {
		t.Fatalf("past the timeout: %+v, want the one session forced", res)
	}
	r.waitForSessions(t, 0)
	r.do(t, ActionFinish)
	if n := r.store.Node("live", "n-1"); n.State != fleet.Terminated || n.ForcedSessions == nil || *n.ForcedSessions != 1 {
		t.Fatalf("record after a forced drain: %+v", n)
	}
}

func TestASessionThatEndsLetsTheNodeGo(t *testing.T) {
	r := newRig(t)
	pub := r.node.Publish(t, "short", 2)
	r.waitForSessions(t, 1)
	r.do(t, ActionStart)
	_ = pub.Wait()
	r.waitForSessions(t, 0)
	if res := r.do(t, ActionCheck); !res.Drained || res.Forced != 0 {
		t.Fatalf("after the session ended: %+v", res)
	}
}

func TestACancelledDrainRestoresTheNode(t *testing.T) {
	r := newRig(t)
	r.do(t, ActionStart)
	r.do(t, ActionRestore)
	n := r.store.Node("live", "n-1")
	if n.State != fleet.Active || n.Weight != traffic.FullWeight || r.w.set["n-1"] != traffic.FullWeight {
		t.Fatalf("after restore: %+v, weights %v", n, r.w.set)
	}
	if last := r.cmds.documents[len(r.cmds.documents)-1]; last != "media-rtmp" {
		t.Fatalf("restore sent %s, want the deploy document to accept sessions again", last)
	}
}

func TestADrainWhoseClaimFailsLeavesTheNodeServingUntouched(t *testing.T) {
	r := newRig(t)
	r.h.store = throttledStore{r.store}
	raw, _ := json.Marshal(Request{Action: ActionStart, Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "in-1"}})
	if _, err := r.h.Handle()(context.Background(), raw); err == nil {
		t.Fatal("start succeeded although the node could not be claimed")
	}
	if n := r.store.Node("live", "n-1"); n.State != fleet.Active || n.Weight != 100 || len(r.w.removed) != 0 || len(r.cmds.documents) != 0 {
		t.Fatalf("after a failed claim: %+v, records removed %v, commands %v", n, r.w.removed, r.cmds.documents)
	}
}

func TestAStartRetriedAfterTheRecordCouldNotBeRemovedFinishesTheDrain(t *testing.T) {
	r := newRig(t)
	r.w.failRemove = &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
	raw, _ := json.Marshal(Request{Action: ActionStart, Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "in-1"}})
	if _, err := r.h.Handle()(context.Background(), raw); err == nil {
		t.Fatal("start succeeded although the record could not be removed")
	}
	if n := r.store.Node("live", "n-1"); n.State != fleet.Draining || n.Execution != "in-1" {
		t.Fatalf("a node that may have lost its traffic must be known as draining: %+v", n)
	}
	r.do(t, ActionStart)
	if len(r.w.removed) != 1 || len(r.cmds.documents) != 1 {
		t.Fatalf("retried start: records removed %v, commands %v", r.w.removed, r.cmds.documents)
	}
}

func TestACancelledScaleInStopsCountingAndAsksForRestore(t *testing.T) {
	r := newRig(t)
	r.do(t, ActionStart)
	r.store.Cancelled["in-1"] = true
	if res := r.do(t, ActionCheck); !res.Cancelled || res.Drained {
		t.Fatalf("check after a cancel: %+v", res)
	}
}

func TestEveryCheckRenewsTheScaleInsLockAndALostLockPutsTheNodeBack(t *testing.T) {
	r := newRig(t)
	r.do(t, ActionStart)
	r.do(t, ActionCheck)
	r.do(t, ActionCheck)
	if got := r.store.Renewed["live"]; got != 2 {
		t.Fatalf("two checks renewed the lock %d times", got)
	}
	// Another execution holds the pool now: the scale-in must stop.
	r.store.Locks["live"] = "out-2"
	raw, _ := json.Marshal(Request{Action: ActionCheck, Task: events.NodeTask{Pool: "live", Node: "n-1", Execution: "in-1"}})
	_, err := r.h.Handle()(context.Background(), raw)
	var named events.Named
	if !errors.As(err, &named) || named.ErrorName() != events.ErrStateConflict || !strings.Contains(err.Error(), "goes back to service") {
		t.Fatalf("a check without the lock: %v, want a StateConflict the workflow restores the node on", err)
	}
	if n, _ := r.store.GetNode(context.Background(), "live", "n-1"); n.State != fleet.Draining || len(r.inst.terminated) != 0 {
		t.Fatalf("the node after a check without the lock: %s", n.State)
	}
}
