package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden decisions in testevents/trigger/expected")

const eventsDir = "../../testevents/trigger"

// fakeStore is a hand-written Store that records every call.
type fakeStore struct {
	seen       map[string]bool
	lastScaled map[string]time.Time
	locks      map[string]string
	paused     map[string]bool
	cancelled  []string
	calls      []string
	err        error
}

func newFakeStore() *fakeStore {
	return &fakeStore{seen: map[string]bool{}, lastScaled: map[string]time.Time{}, locks: map[string]string{}, paused: map[string]bool{}}
}

func (f *fakeStore) MarkScaled(_ context.Context, p, dir string, at time.Time, _ string) error {
	f.calls = append(f.calls, "MarkScaled "+p+" "+dir)
	if prev, ok := f.lastScaled[p+"/"+dir]; !ok || at.After(prev) {
		f.lastScaled[p+"/"+dir] = at
	}
	return nil
}

func (f *fakeStore) GetLock(_ context.Context, p string) (fleet.Lease, bool, error) {
	owner, ok := f.locks[p]
	return fleet.Lease{Pool: p, Owner: owner}, ok, nil
}

func (f *fakeStore) CancelDrains(_ context.Context, p, execution, _ string) error {
	f.calls = append(f.calls, "CancelDrains "+p+" "+execution)
	f.cancelled = append(f.cancelled, execution)
	return nil
}

func (f *fakeStore) Status(_ context.Context, p string) (fleet.PoolStatus, error) {
	f.calls = append(f.calls, "Status "+p)
	return fleet.PoolStatus{Paused: f.paused[p], Reason: "maintenance", Operator: "sre"}, nil
}

func (f *fakeStore) AcquireLock(_ context.Context, p, owner string, _ time.Duration) (fleet.Lease, error) {
	f.calls = append(f.calls, "AcquireLock "+p+" "+owner)
	if holder, ok := f.locks[p]; ok && holder != owner {
		return fleet.Lease{}, events.Held("pool %s is locked by %s", p, holder)
	}
	f.locks[p] = owner
	return fleet.Lease{Pool: p, Owner: owner}, nil
}

func (f *fakeStore) ReleaseLock(_ context.Context, p, owner string) (bool, error) {
	f.calls = append(f.calls, "ReleaseLock "+p+" "+owner)
	if f.locks[p] != owner {
		return false, nil
	}
	delete(f.locks, p)
	return true, nil
}

// fakeSFN is a hand-written Step Functions that records started executions
// and refuses a name it has seen, as the service does.
type fakeSFN struct {
	started []*sfn.StartExecutionInput
	err     error
}

func (f *fakeSFN) StartExecution(_ context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	for _, s := range f.started {
		if aws.ToString(s.Name) == aws.ToString(in.Name) {
			return nil, &sfntypes.ExecutionAlreadyExists{Message: aws.String("Execution Already Exists")}
		}
	}
	f.started = append(f.started, in)
	arn := strings.Replace(aws.ToString(in.StateMachineArn), ":stateMachine:", ":execution:", 1) + ":" + aws.ToString(in.Name)
	return &sfn.StartExecutionOutput{ExecutionArn: aws.String(arn)}, nil
}

var machines = map[pool.Direction]string{
	pool.ScaleOut: "arn:aws:states:us-east-1:123456789012:stateMachine:scale-out",
	pool.ScaleIn:  "arn:aws:states:us-east-1:123456789012:stateMachine:scale-in",
}

func (f *fakeStore) MarkOnce(_ context.Context, key string, _ time.Duration) (bool, error) {
	f.calls = append(f.calls, "MarkOnce "+key)
	if f.err != nil {
		return false, f.err
	}
	if f.seen[key] {
		return false, nil
	}
	f.seen[key] = true
	return true, nil
}

func (f *fakeStore) LastScaled(_ context.Context, p, dir string) (time.Time, bool, error) {
	f.calls = append(f.calls, "LastScaled "+p+" "+dir)
	at, ok := f.lastScaled[p+"/"+dir]
	return at, ok, nil
}

func devConfig(t *testing.T) pool.File {
	t.Helper()
	f, err := pool.LoadFile("../../infra/config/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var eventTime = time.Date(2026, 11, 21, 10, 0, 5, 0, time.UTC)

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newTestHandler(t *testing.T, store Store, now time.Time) *Handler {
	return newTestHandlerWith(t, store, &fakeSFN{}, now)
}

func newTestHandlerWith(t *testing.T, store Store, sf Executions, now time.Time) *Handler {
	return NewHandler(devConfig(t), store, sf, machines, func() time.Time { return now }, telemetry.NewLogger(io.Discard, "trigger"))
}

func TestSampleEventsMatchGoldenDecisions(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if len(files) == 0 {
		t.Fatal("no sample events")
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			d, err := newTestHandler(t, newFakeStore(), eventTime).Handle(context.Background(), readEvent(t, name))
			if err != nil {
				t.Fatalf("sample event refused: %v", err)
			}
			got, _ := json.MarshalIndent(d, "", "  ")
			got = append(got, '\n')
			golden := filepath.Join(eventsDir, "expected", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("no golden decision (run go test -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("decision differs from %s:\ngot  %s\nwant %s", golden, got, want)
			}
		})
	}
}

func TestInvalidEventsAreRefusedWithoutWrites(t *testing.T) {
	cases := []struct {
		name string
		file string
		want string
	}{
		{"a truncated event is refused", "invalid/truncated.json", "input does not decode: unexpected end of JSON input"},
		{"an event without an alarm name is refused", "invalid/missing-alarm-name.json", "detail.alarmName is missing"},
		{"an event from another source is refused", "invalid/wrong-source.json", `source is "aws.ec2"`},
		{"an event with an unreadable timestamp is refused", "invalid/bad-timestamp.json", "detail.state.timestamp"},
		{"an alarm no pool owns is refused", "invalid/unknown-alarm.json", `alarm "someone-elses-alarm" is not a scaling alarm`},
		{"an operator request without a count is refused", "invalid/operator-no-count.json", "detail.count must be at least 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeStore()
			_, err := newTestHandler(t, store, eventTime).Handle(context.Background(), readEvent(t, tc.file))
			var invalid *events.InvalidInput
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %T %v, want *events.InvalidInput", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to say %q", err, tc.want)
			}
			if len(store.calls) != 0 {
				t.Fatalf("store was called for a refused event: %v", store.calls)
			}
		})
	}
}

func TestDuplicateStateChangeIsIgnored(t *testing.T) {
	store := newFakeStore()
	h := newTestHandler(t, store, eventTime)
	raw := readEvent(t, "alarm-connections-high.json")
	first, err := h.Handle(context.Background(), raw)
	if err != nil || first.Action != ActionScale {
		t.Fatalf("first delivery = %+v, %v", first, err)
	}
	again, err := h.Handle(context.Background(), raw)
	if err != nil || again.Action != ActionIgnore || !strings.HasPrefix(again.Reason, "duplicate") {
		t.Fatalf("second delivery = %+v, %v; want ignored as duplicate", again, err)
	}
}

func TestStoreFailureIsNamedForTheStateMachine(t *testing.T) {
	store := newFakeStore()
	store.err = errors.New("connection reset")
	_, err := newTestHandler(t, store, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	var internal *events.Internal
	if !errors.As(err, &internal) || !strings.Contains(err.Error(), "checking for a duplicate event: connection reset") {
		t.Fatalf("err = %T %v, want Internal with context", err, err)
	}
}

func TestDecide(t *testing.T) {
	cfg := devConfig(t)
	live, _ := cfg.Find("live-rtmp-use1")
	alarm := func(state string) events.AlarmEvent {
		ev, err := events.ParseAlarmEvent(readEvent(t, "alarm-connections-high.json"))
		if err != nil {
			t.Fatal(err)
		}
		ev.Detail.State.Value = state
		return ev
	}
	out := pool.AlarmRef{Pool: live.Name, Direction: pool.ScaleOut, Metric: pool.MetricConnections}
	in := pool.AlarmRef{Pool: live.Name, Direction: pool.ScaleIn, Metric: pool.MetricCPU}
	cases := []struct {
		name   string
		ev     events.AlarmEvent
		ref    pool.AlarmRef
		cd     Cooldown
		action string
		reason string
	}{
		{"an alarm that returns to OK does nothing", alarm("OK"), out, Cooldown{}, ActionIgnore, "moved to OK"},
		{"missing data holds the pool and says so", alarm("INSUFFICIENT_DATA"), in, Cooldown{}, ActionIgnore, "metrics missing (INSUFFICIENT_DATA): the pool holds its current capacity"},
		{"a first alarm scales out", alarm("ALARM"), out, Cooldown{}, ActionScale, "connections alarm"},
		{"an alarm inside the scale-out cooldown is ignored", alarm("ALARM"), out, Cooldown{LastScaled: eventTime.Add(-time.Minute), Known: true}, ActionIgnore, "inside scale-out cooldown: last scaled 1m0s ago, window 2m0s"},
		{"an alarm after the scale-out cooldown scales out", alarm("ALARM"), out, Cooldown{LastScaled: eventTime.Add(-3 * time.Minute), Known: true}, ActionScale, "in ALARM since"},
		{"scale-in waits for its longer window", alarm("ALARM"), in, Cooldown{LastScaled: eventTime.Add(-5 * time.Minute), Known: true}, ActionIgnore, "window 15m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.ev, tc.ref, live, tc.cd, eventTime)
			if d.Action != tc.action || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision = %+v, want %s with reason containing %q", d, tc.action, tc.reason)
			}
			if (d.Action == ActionScale) != (d.Execution != "") {
				t.Fatalf("execution name %q on action %s", d.Execution, d.Action)
			}
		})
	}
}

func TestExecutionNameIsStableValidAndShort(t *testing.T) {
	ref := pool.AlarmRef{Pool: strings.Repeat("p", 40), Direction: pool.ScaleOut, Metric: pool.MetricBandwidth}
	at := time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)
	a := ExecutionName(ref, "alarm-a", at)
	if a != ExecutionName(ref, "alarm-a", at) {
		t.Fatal("the same alarm and time gave two names")
	}
	if a == ExecutionName(ref, "alarm-b", at) || a == ExecutionName(ref, "alarm-a", at.Add(time.Millisecond)) {
		t.Fatal("different alarms or times share a name")
	}
	if len(a) > 80 || strings.ContainsAny(a, " .:<>{}[]?*\"#%\\^|~`$&,;/") {
		t.Fatalf("name %q is not a valid execution name", a)
	}
}

func TestScaleDecisionStartsOneExecutionUnderTheLock(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	h := newTestHandlerWith(t, store, sf, eventTime)
	d, err := h.Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionScale || d.ExecutionARN == "" {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if len(sf.started) != 1 || aws.ToString(sf.started[0].Name) != d.Execution || aws.ToString(sf.started[0].StateMachineArn) != machines[pool.ScaleOut] {
		t.Fatalf("started %+v", sf.started)
	}
	var req events.ScaleRequest
	if err := json.Unmarshal([]byte(aws.ToString(sf.started[0].Input)), &req); err != nil || req.Pool != "live-rtmp-use1" || req.Direction != "out" || req.Execution != d.Execution {
		t.Fatalf("execution input = %+v, %v", req, err)
	}
	if store.locks["live-rtmp-use1"] != d.Execution {
		t.Fatalf("lock owner = %q, want the execution", store.locks["live-rtmp-use1"])
	}
}

func TestABusyPoolIgnoresTheAlarm(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.locks["live-rtmp-use1"] = "another-execution"
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionIgnore || !strings.Contains(d.Reason, "pool busy: pool live-rtmp-use1 is locked by another-execution") {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if len(sf.started) != 0 {
		t.Fatal("an execution started on a locked pool")
	}
}

func TestAFailedStartGivesTheLockBack(t *testing.T) {
	store := newFakeStore()
	sf := &fakeSFN{err: &sfntypes.StateMachineDoesNotExist{Message: aws.String("no such machine")}}
	_, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	var internal *events.Internal
	if !errors.As(err, &internal) || !strings.Contains(err.Error(), "no such machine") {
		t.Fatalf("err = %T %v", err, err)
	}
	if len(store.locks) != 0 {
		t.Fatalf("lock kept after a failed start: %v", store.locks)
	}
}

func TestAnExistingExecutionIsNotStartedTwice(t *testing.T) {
	sf := &fakeSFN{}
	raw := readEvent(t, "alarm-connections-high.json")
	// Two triggers with separate dedupe memories (a mark lost, say) still
	// start one execution: the name is derived from the state change.
	first, err := newTestHandlerWith(t, newFakeStore(), sf, eventTime).Handle(context.Background(), raw)
	if err != nil || first.Action != ActionScale {
		t.Fatalf("first = %+v, %v", first, err)
	}
	second, err := newTestHandlerWith(t, newFakeStore(), sf, eventTime).Handle(context.Background(), raw)
	if err != nil || second.Action != ActionIgnore || !strings.Contains(second.Reason, "already started") || len(sf.started) != 1 {
		t.Fatalf("second = %+v, %v, started %d", second, err, len(sf.started))
	}
}

func TestAPausedPoolRecordsAndIgnoresTheAlarm(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.paused["live-rtmp-use1"] = true
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionIgnore || !strings.Contains(d.Reason, "pool paused by sre") {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if len(sf.started) != 0 || len(store.locks) != 0 {
		t.Fatal("a paused pool started an execution or took its lock")
	}
	if !store.seen["mediascale-dev-live-rtmp-use1-scale-out-connections@2026-11-21T10:00:00.123+0000"] {
		t.Fatal("the alarm was not recorded")
	}
}

func TestARequestToGrowHoldsScaleInForItsWindow(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	// A scale-out alarm turned away by the cooldown still counts.
	store.lastScaled["live-rtmp-use1/out"] = eventTime.Add(-time.Minute)
	h := newTestHandlerWith(t, store, sf, eventTime)
	out, err := h.Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || out.Action != ActionIgnore {
		t.Fatalf("scale-out inside its cooldown = %+v, %v", out, err)
	}
	later := newTestHandlerWith(t, store, sf, eventTime.Add(10*time.Minute))
	in, err := later.Handle(context.Background(), readEvent(t, "alarm-connections-low.json"))
	if err != nil || in.Action != ActionIgnore || !strings.Contains(in.Reason, "stabilizing: the pool asked to grow 10m0s ago") {
		t.Fatalf("scale-in 10 min after a request to grow = %+v, %v", in, err)
	}
	afterWindow := newTestHandlerWith(t, newFakeStoreFrom(store), sf, eventTime.Add(16*time.Minute))
	in, err = afterWindow.Handle(context.Background(), readEvent(t, "alarm-connections-low.json"))
	if err != nil || in.Action != ActionScale {
		t.Fatalf("scale-in after the 15 min window = %+v, %v", in, err)
	}
}

// newFakeStoreFrom copies the marks of a store but forgets seen events, so
// the same sample event can be delivered again as a new state change.
func newFakeStoreFrom(f *fakeStore) *fakeStore {
	g := newFakeStore()
	for k, v := range f.lastScaled {
		g.lastScaled[k] = v
	}
	return g
}

func TestAScaleOutAlarmCancelsAPendingDrain(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.locks["live-rtmp-use1"] = "live-rtmp-use1-in-20261121T090000000Z-0badcafe"
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionIgnore || !strings.Contains(d.Reason, "cancelled the drains of scale-in live-rtmp-use1-in-") {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if len(store.cancelled) != 1 || len(sf.started) != 0 {
		t.Fatalf("cancelled %v, started %d; want the drain cancelled and nothing launched", store.cancelled, len(sf.started))
	}
	store.locks["live-rtmp-use1"] = "live-rtmp-use1-out-20261121T090000000Z-0badcafe"
	d, _ = newTestHandlerWith(t, newFakeStoreWithLock(store.locks), sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if d.Action != ActionIgnore || !strings.HasPrefix(d.Reason, "pool busy") {
		t.Fatalf("an alarm against a running scale-out = %+v", d)
	}
}

func newFakeStoreWithLock(locks map[string]string) *fakeStore {
	g := newFakeStore()
	for k, v := range locks {
		g.locks[k] = v
	}
	return g
}

func TestAnOperatorRequestGoesThroughTheSameWorkflow(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.paused["live-rtmp-use1"] = true
	store.lastScaled["live-rtmp-use1/out"] = eventTime.Add(-time.Second)
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "operator-scale-out-dry-run.json"))
	if err != nil || d.Action != ActionScale || len(sf.started) != 1 {
		t.Fatalf("decision %+v, %v, started %d; an operator acts despite pause and cooldown", d, err, len(sf.started))
	}
	var req events.ScaleRequest
	_ = json.Unmarshal([]byte(aws.ToString(sf.started[0].Input)), &req)
	if req.Count != 2 || !req.DryRun || req.Direction != "out" || store.locks["live-rtmp-use1"] != d.Execution {
		t.Fatalf("execution input %+v, lock %q", req, store.locks["live-rtmp-use1"])
	}
	raw := []byte(`{"source":"mediascale.operator","detail-type":"Scale Request","detail":{"pool":"live-rtmp-use1","direction":"out","count":99,"operator":"x","reason":"y"}}`)
	if _, err := newTestHandlerWith(t, newFakeStore(), sf, eventTime).Handle(context.Background(), raw); err == nil || !strings.Contains(err.Error(), "above the pool's max of 6") {
		t.Fatalf("a count above max: %v", err)
	}
}
