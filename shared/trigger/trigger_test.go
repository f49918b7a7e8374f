package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

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
	nodes      map[string][]fleet.Node
	windows    map[string][]fleet.Sample
	forecasts  map[string]fleet.Forecast
	decisions  map[string]fleet.Decision
	loops      map[string]string
	shows      map[string][]fleet.Show
	cancelled  []string
	calls      []string
	err        error
	// locked runs when a lock is taken: what another execution did
	// between a decision's reads and its lock.
	locked func()
}

func newFakeStore() *fakeStore {
	return &fakeStore{seen: map[string]bool{}, lastScaled: map[string]time.Time{}, locks: map[string]string{}, paused: map[string]bool{},
		nodes: map[string][]fleet.Node{}, windows: map[string][]fleet.Sample{}, forecasts: map[string]fleet.Forecast{},
		decisions: map[string]fleet.Decision{}, loops: map[string]string{}, shows: map[string][]fleet.Show{}}
}

func (f *fakeStore) ListNodes(_ context.Context, p string) ([]fleet.Node, error) {
	f.calls = append(f.calls, "ListNodes "+p)
	return f.nodes[p], nil
}

func (f *fakeStore) Window(_ context.Context, p string) ([]fleet.Sample, error) {
	return f.windows[p], nil
}

func (f *fakeStore) Forecast(_ context.Context, p string) (fleet.Forecast, bool, error) {
	fc, ok := f.forecasts[p]
	return fc, ok, nil
}

func (f *fakeStore) Shows(_ context.Context, p string) ([]fleet.Show, error) {
	return f.shows[p], nil
}

func (f *fakeStore) MarkReplaced(_ context.Context, p, id, execution string) error {
	f.calls = append(f.calls, "MarkReplaced "+p+" "+id)
	for i, n := range f.nodes[p] {
		if n.ID == id && n.Goal == events.GoalReplace {
			f.nodes[p][i].Goal = events.GoalReplaced
		}
	}
	return nil
}

func (f *fakeStore) RecordSample(_ context.Context, p string, _ []fleet.Sample, s fleet.Sample, _ time.Duration, d fleet.Decision) error {
	f.calls = append(f.calls, "RecordSample "+p)
	f.windows[p] = append(f.windows[p], s)
	if d.At.IsZero() {
		d.At = s.At
	}
	f.decisions[p] = d
	return nil
}

func (f *fakeStore) LastDecision(_ context.Context, p string) (fleet.Decision, bool, error) {
	d, ok := f.decisions[p]
	return d, ok, nil
}

// fakeAlarms is a hand-written CloudWatch that answers the states of the
// alarms it holds for a name prefix and the per-minute refusals it holds
// for a pool, and records every request.
type fakeAlarms struct {
	states   map[string]cwtypes.StateValue
	requests []*cloudwatch.DescribeAlarmsInput
	// refused holds each pool's SessionsRefused sums, one a minute, and
	// refusedAt the minutes they start at (none: whole minutes).
	refused     map[string][]float64
	refusedAt   map[string][]time.Time
	metricsErr  error
	metricsRead []*cloudwatch.GetMetricDataInput
}

func (f *fakeAlarms) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.metricsRead = append(f.metricsRead, in)
	if f.metricsErr != nil {
		return nil, f.metricsErr
	}
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range in.MetricDataQueries {
		r := cwtypes.MetricDataResult{Id: q.Id}
		for _, d := range q.MetricStat.Metric.Dimensions {
			if aws.ToString(d.Name) == "Pool" && aws.ToString(q.MetricStat.Metric.MetricName) == "SessionsRefused" {
				r.Values, r.Timestamps = f.refused[aws.ToString(d.Value)], f.refusedAt[aws.ToString(d.Value)]
			}
		}
		out.MetricDataResults = append(out.MetricDataResults, r)
	}
	return out, nil
}

func (f *fakeAlarms) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	f.requests = append(f.requests, in)
	out := &cloudwatch.DescribeAlarmsOutput{}
	for name, st := range f.states {
		if strings.HasPrefix(name, aws.ToString(in.AlarmNamePrefix)) {
			out.MetricAlarms = append(out.MetricAlarms, cwtypes.MetricAlarm{AlarmName: aws.String(name), StateValue: st})
		}
	}
	return out, nil
}

// reporting is a node whose agent reported the given load just before
// the event.
func reporting(poolName, id string, conns, cpu float64) fleet.Node {
	return fleet.Node{Pool: poolName, ID: id, State: fleet.Active, AZ: "us-east-1a",
		Heartbeat: &fleet.Heartbeat{At: eventTime.Add(-5 * time.Second), Healthy: true, Load: fleet.Load{Connections: conns, CPUPercent: cpu}}}
}

// quietFor is a window of one sample a minute, each with the given total
// connections, from ago until a minute before the event.
func quietFor(ago time.Duration, conns float64) []fleet.Sample {
	var out []fleet.Sample
	for at := eventTime.Add(-ago); at.Before(eventTime); at = at.Add(time.Minute) {
		out = append(out, fleet.Sample{At: at, Load: fleet.Load{Connections: conns, CPUPercent: 10}})
	}
	return out
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
	if f.locked != nil {
		f.locked()
	}
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

func (f *fakeStore) ClaimLoop(_ context.Context, p, owner string, _ time.Duration) (fleet.Lease, error) {
	f.calls = append(f.calls, "ClaimLoop "+p)
	if holder, ok := f.loops[p]; ok && holder != owner {
		return fleet.Lease{}, events.Held("pool %s's pressure loop is held by %s", p, holder)
	}
	f.loops[p] = owner
	return fleet.Lease{Pool: p, Owner: owner}, nil
}

func (f *fakeStore) RenewLoop(_ context.Context, p, owner string, _ time.Duration) (fleet.Lease, error) {
	f.calls = append(f.calls, "RenewLoop "+p)
	if f.loops[p] != owner {
		return fleet.Lease{}, events.Conflict(nil, "pool %s: %s no longer holds the pressure loop", p, owner)
	}
	return fleet.Lease{Pool: p, Owner: owner}, nil
}

func (f *fakeStore) EndLoop(_ context.Context, p, owner string) (bool, error) {
	f.calls = append(f.calls, "EndLoop "+p)
	if f.loops[p] != owner {
		return false, nil
	}
	delete(f.loops, p)
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

func (f *fakeStore) Unmark(_ context.Context, key string) error {
	f.calls = append(f.calls, "Unmark "+key)
	delete(f.seen, key)
	return nil
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

var eventTime = time.Date(2026, 11, 21, 11, 0, 5, 0, time.UTC)

// testOrigin is the account and region of the sample events: the local
// cloud's (moto's default account).
var testOrigin = events.Origin{Account: "123456789012", Region: "us-east-1"}

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
	return newTestHandlerWithAlarms(t, store, sf, &fakeAlarms{}, now)
}

func newTestHandlerWithAlarms(t *testing.T, store Store, sf Executions, al Alarms, now time.Time) *Handler {
	return NewHandler(devConfig(t), testOrigin, store, sf, al, machines, func() time.Time { return now }, telemetry.NewLogger(io.Discard, "trigger"))
}

// goldenFleet is the fleet each sample event meets in the golden test:
// overloaded live nodes for the scale-out alarms, quiet ones with a full
// quiet window for the scale-in alarm, hot voice nodes for the CPU alarm.
// goldenFleet is the fleet each sample event meets. The live pool's warm
// pool (one node) is full, so its decisions are about serving capacity.
func goldenFleet(name string) *fakeStore {
	f := newFakeStore()
	switch {
	case strings.Contains(name, "low") || strings.Contains(name, "operator"):
		f.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 100, 10), reporting("live-rtmp-use1", "n-2", 120, 12), parked()}
		f.windows["live-rtmp-use1"] = quietFor(20*time.Minute, 250)
	case strings.Contains(name, "voice"):
		f.nodes["voice-sfu-use1"] = []fleet.Node{reporting("voice-sfu-use1", "n-1", 900, 70), reporting("voice-sfu-use1", "n-2", 1000, 72)}
	default:
		f.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 2000, 40), reporting("live-rtmp-use1", "n-2", 2100, 41), parked()}
	}
	return f
}

// parked is a warm node of the dev live pool at its current revision.
func parked() fleet.Node {
	f, _ := pool.LoadFile("../../infra/config/dev.yaml")
	p, _ := f.Find("live-rtmp-use1")
	return fleet.Node{Pool: p.Name, ID: "w-1", State: fleet.Warm, Goal: events.GoalWarm, Revision: p.Revision(), AZ: "us-east-1b", InstanceID: "i-warm"}
}

func TestSampleEventsMatchGoldenDecisions(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if len(files) == 0 {
		t.Fatal("no sample events")
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			d, err := newTestHandler(t, goldenFleet(name), eventTime).Handle(context.Background(), readEvent(t, name))
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
		{"an alarm of another account is refused", "invalid/other-account.json", "event from account 999999999999"},
		{"an alarm of another region is refused", "invalid/other-region.json", "event from region eu-west-1"},
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

func TestOnlyAnAlarmInALARMWakesTheController(t *testing.T) {
	cases := []struct {
		name   string
		state  string
		action string
		reason string
	}{
		{"an alarm that returns to OK leaves the pool to the schedule", "OK", ActionIgnore, "moved to OK, not ALARM: the schedule keeps watching the pool"},
		{"missing data holds the pool and says so", "INSUFFICIENT_DATA", ActionIgnore, "metrics missing (INSUFFICIENT_DATA): the pool holds its current capacity"},
		{"an alarm in ALARM asks the controller", "ALARM", ActionScale, "refilling to 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := bytes.Replace(readEvent(t, "alarm-connections-high.json"), []byte(`"value": "ALARM"`), []byte(`"value": "`+tc.state+`"`), 1)
			store := newFakeStore()
			d, err := newTestHandler(t, store, eventTime).Handle(context.Background(), raw)
			if err != nil || d.Action != tc.action || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision = %+v, %v; want %s saying %q", d, err, tc.action, tc.reason)
			}
			if asked := slices.Contains(store.calls, "ListNodes live-rtmp-use1"); asked != (tc.state == "ALARM") {
				t.Fatalf("controller asked = %v for state %s", asked, tc.state)
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

func TestAScaleInAlarmWhileAnotherMetricsScaleOutAlarmIsInALARMRemovesNothing(t *testing.T) {
	store, sf := goldenFleet("alarm-connections-low.json"), &fakeSFN{}
	al := &fakeAlarms{states: map[string]cwtypes.StateValue{
		"mediascale-dev-live-rtmp-use1-scale-out-cpu":         cwtypes.StateValueAlarm,
		"mediascale-dev-live-rtmp-use1-scale-in-connections":  cwtypes.StateValueAlarm,
		"mediascale-dev-voice-sfu-use1-scale-out-connections": cwtypes.StateValueOk,
	}}
	d, err := newTestHandlerWithAlarms(t, store, sf, al, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-low.json"))
	if err != nil || d.Action != ActionIgnore || !strings.Contains(d.Reason, "the cpu scale-out alarm is in ALARM: holding") || len(sf.started) != 0 {
		t.Fatalf("decision = %+v, %v, started %d", d, err, len(sf.started))
	}
	if len(al.requests) != 1 || aws.ToString(al.requests[0].AlarmNamePrefix) != "mediascale-dev-live-rtmp-use1-scale-" {
		t.Fatalf("alarm states read with %+v; want one call by the pool's prefix", al.requests)
	}
	delete(al.states, "mediascale-dev-live-rtmp-use1-scale-out-cpu")
	d, err = newTestHandlerWithAlarms(t, newFakeStoreFrom(store), sf, al, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-low.json"))
	var req events.ScaleRequest
	if err != nil || d.Action != ActionScale || len(sf.started) != 1 || json.Unmarshal([]byte(aws.ToString(sf.started[0].Input)), &req) != nil ||
		req.Direction != "in" || req.Count != 1 || aws.ToString(sf.started[0].StateMachineArn) != machines[pool.ScaleIn] {
		t.Fatalf("with every metric quiet: %+v, %v, input %+v", d, err, req)
	}
}

func TestScheduleTickDecidesEveryPool(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 3000, 40), reporting("live-rtmp-use1", "n-2", 3000, 40)}
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if err != nil || d.Action != ActionScale || len(d.Pools) != 2 || len(sf.started) != 2 {
		t.Fatalf("tick = %+v, %v, started %d", d, err, len(sf.started))
	}
	// Live: 6000 sessions call for 5 nodes, bounded to doubling the 2 it
	// has; voice: empty, refilled to its min of 2.
	want := map[string]int{"live-rtmp-use1": 4, "voice-sfu-use1": 2}
	for _, started := range sf.started {
		var req events.ScaleRequest
		if err := json.Unmarshal([]byte(aws.ToString(started.Input)), &req); err != nil || req.Desired != want[req.Pool] || req.Direction != "out" || req.Alarm != "schedule" {
			t.Fatalf("input %+v, %v; want desired %d", req, err, want[req.Pool])
		}
	}
	if got := len(store.windows["live-rtmp-use1"]); got != 1 || store.windows["live-rtmp-use1"][0].Load.Connections != 6000 {
		t.Fatalf("the tick recorded %d samples: %+v", got, store.windows["live-rtmp-use1"])
	}
}

func TestTheDispatchersRefusalsAreDemandTheControllerSizesFor(t *testing.T) {
	// Two nodes at 1300 sessions are inside the tolerance band; the
	// dispatcher refused 4,000 sessions in the worst recent ten seconds,
	// of clients asking every 5 s: 2,000 waiting, 4,600 in all, 4 nodes.
	store, sf := newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 1300, 30), reporting("live-rtmp-use1", "n-2", 1300, 30), parked()}
	al := &fakeAlarms{refused: map[string][]float64{"live-rtmp-use1": {4000, 1000}}}
	tick, err := newTestHandlerWithAlarms(t, store, sf, al, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	live := tick.Pools[0]
	if err != nil || live.Action != ActionScale || live.Recommendation.Desired != 4 || !strings.Contains(live.Reason, "counting 2000 sessions the dispatcher refused") {
		t.Fatalf("tick = %+v (%+v), %v", live, live.Recommendation, err)
	}
	q := al.metricsRead[0]
	if span := aws.ToTime(q.EndTime).Sub(aws.ToTime(q.StartTime)); span != 2*time.Minute || aws.ToInt32(q.MetricDataQueries[0].MetricStat.Period) != 10 {
		t.Fatalf("read %s of refusals at period %d", span, aws.ToInt32(q.MetricDataQueries[0].MetricStat.Period))
	}

	// 150 refusals in the 5 s of a period that has passed are 30 a
	// second, not 15: 150 clients waiting, 2,750 sessions, 3 nodes.
	store, sf = newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 1300, 30), reporting("live-rtmp-use1", "n-2", 1300, 30), parked()}
	al = &fakeAlarms{refused: map[string][]float64{"live-rtmp-use1": {150}}, refusedAt: map[string][]time.Time{"live-rtmp-use1": {eventTime.Add(-5 * time.Second)}}}
	tick, err = newTestHandlerWithAlarms(t, store, sf, al, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if live := tick.Pools[0]; err != nil || !strings.Contains(live.Reason, "counting 150 sessions the dispatcher refused") {
		t.Fatalf("a crowd 5 s into its period: %+v, %v", live, err)
	}

	// CloudWatch refusing the read leaves the decision to the nodes.
	store, sf = newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 1300, 30), reporting("live-rtmp-use1", "n-2", 1300, 30), parked()}
	al = &fakeAlarms{metricsErr: &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}}
	tick, err = newTestHandlerWithAlarms(t, store, sf, al, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if live := tick.Pools[0]; err != nil || live.Action == ActionScale || !strings.Contains(live.Reason, "within target") {
		t.Fatalf("with refusals unreadable: %+v, %v", live, err)
	}
}

func TestAnUnhealthyNodeIsReplacedOnceAndNoLongerOwed(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	sick := fleet.Node{Pool: "live-rtmp-use1", ID: "n-sick", State: fleet.Draining, Goal: events.GoalReplace, Execution: fleet.HealerOwner}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 600, 10), sick, parked()}
	tick, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	live := tick.Pools[0]
	if err != nil || live.Action != ActionScale || live.Recommendation.Desired != 2 || !strings.Contains(live.Reason, "replacing 1 node(s) taken out as unhealthy (n-sick)") {
		t.Fatalf("tick = %+v, %v", live, err)
	}
	if !slices.Contains(store.calls, "MarkReplaced live-rtmp-use1 n-sick") {
		t.Fatalf("the replacement started but the node is still owed: %v", store.calls)
	}
	// Next minute, with the replacement on its way, nothing more is owed.
	store.nodes["live-rtmp-use1"] = append(store.nodes["live-rtmp-use1"], fleet.Node{Pool: "live-rtmp-use1", ID: "n-new", State: fleet.Provisioning})
	delete(store.locks, "live-rtmp-use1")
	tick, _ = newTestHandlerWith(t, store, sf, eventTime.Add(time.Minute)).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if live := tick.Pools[0]; live.Action == ActionScale {
		t.Fatalf("a second replacement for the same node: %+v", live)
	}
}

func TestAForecastRaisesAQuietPoolAheadOfItsPeak(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 300, 10), parked()}
	store.nodes["voice-sfu-use1"] = []fleet.Node{reporting("voice-sfu-use1", "v-1", 10, 5), reporting("voice-sfu-use1", "v-2", 10, 5)}
	hour := eventTime.Truncate(time.Hour)
	// This hour is quiet; the next one peaks at 5 nodes, and the pool
	// takes 20 minutes to bring a node to full weight.
	store.forecasts["live-rtmp-use1"] = fleet.Forecast{LeadSeconds: 1200, Hours: []fleet.ForecastHour{{Hour: hour, Nodes: 1}, {Hour: hour.Add(time.Hour), Nodes: 5}}}
	// More than a lead time before the peak the pool keeps its one node
	// serving, and its warm pool (one configured) grows to the four more
	// the peak will ask for, in a warm-pool-only scale-out.
	before := hour.Add(30 * time.Minute)
	tick, err := newTestHandlerWith(t, store, sf, before).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if live := tick.Pools[0]; err != nil || live.Recommendation.Floor != 1 || live.Recommendation.Desired != 1 || live.Recommendation.Warm.Want != 4 ||
		!strings.Contains(live.Reason, "warm pool 1 of 4 ready: filling 3") {
		t.Fatalf("more than a lead time before the peak = %+v, %v", live, err)
	}
	var req events.ScaleRequest
	if err := json.Unmarshal([]byte(aws.ToString(sf.started[len(sf.started)-1].Input)), &req); err != nil || !req.WarmOnly || req.WarmWant != 4 {
		t.Fatalf("the warm pool's upkeep asked for %+v, %v; want warm-only upkeep of 4", req, err)
	}
	// The warm pool's plan handed the lock back.
	delete(store.locks, "live-rtmp-use1")
	ahead := hour.Add(45 * time.Minute)
	tick, err = newTestHandlerWith(t, store, sf, ahead).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	live := tick.Pools[0]
	if err != nil || live.Action != ActionScale || live.Recommendation.Floor != 5 || live.Recommendation.Desired != 5 ||
		!strings.Contains(live.Reason, "below forecast floor 5") {
		t.Fatalf("a lead time before the peak = %+v (%+v), %v", live, live.Recommendation, err)
	}
}

func TestAPoolStillOverloadedKeepsGrowingByTheDifference(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 3000, 40), reporting("live-rtmp-use1", "n-2", 3000, 40)}
	first, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || first.Action != ActionScale || first.Recommendation.Desired != 4 {
		t.Fatalf("first decision %+v, %v", first, err)
	}
	// Three minutes on, past the scale-out cooldown, the load is higher.
	later := eventTime.Add(3 * time.Minute)
	heavy := func(id string) fleet.Node {
		n := reporting("live-rtmp-use1", id, 4000, 40)
		n.Heartbeat.At = later.Add(-2 * time.Second)
		return n
	}
	store.nodes["live-rtmp-use1"] = []fleet.Node{heavy("n-1"), heavy("n-2")}
	tick, _ := newTestHandlerWith(t, store, sf, later).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if live := tick.Pools[0]; live.Action != ActionIgnore || !strings.HasPrefix(live.Reason, "pool busy") {
		t.Fatalf("a tick while the first execution still plans = %+v", live)
	}
	// Its plan wrote two nodes and handed the lock back; they are still
	// on their way in.
	delete(store.locks, "live-rtmp-use1")
	store.nodes["live-rtmp-use1"] = append(store.nodes["live-rtmp-use1"],
		fleet.Node{Pool: "live-rtmp-use1", ID: "n-3", State: fleet.Shifting}, fleet.Node{Pool: "live-rtmp-use1", ID: "n-4", State: fleet.Deploying})
	tick, err = newTestHandlerWith(t, store, sf, later.Add(time.Second)).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	live := tick.Pools[0]
	if err != nil || live.Action != ActionScale || live.Recommendation.Current != 4 || live.Recommendation.InFlight != 2 || live.Recommendation.Desired != 6 {
		t.Fatalf("a tick with the pool still overloaded = %+v (%+v), %v", live, live.Recommendation, err)
	}
	var req events.ScaleRequest
	for _, st := range sf.started {
		if aws.ToString(st.Name) == live.Execution {
			_ = json.Unmarshal([]byte(aws.ToString(st.Input)), &req)
		}
	}
	if req.Desired != 6 {
		t.Fatalf("second scale-out input %+v: want desired 6, so its plan adds only the difference", req)
	}
}

func TestTwoAlarmsOfAPoolInTheSameSecondStartOnePlanningRound(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 3000, 90)}
	h := newTestHandlerWith(t, store, sf, eventTime)
	conns, err := h.Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || conns.Action != ActionScale {
		t.Fatalf("connections alarm = %+v, %v", conns, err)
	}
	cpu := bytes.ReplaceAll(readEvent(t, "alarm-connections-high.json"), []byte("scale-out-connections"), []byte("scale-out-cpu"))
	// The second trigger races the first: it read no cooldown mark yet.
	delete(store.lastScaled, "live-rtmp-use1/out")
	second, err := h.Handle(context.Background(), cpu)
	if err != nil || second.Action != ActionIgnore || !strings.Contains(second.Reason, "pool busy") || len(sf.started) != 1 {
		t.Fatalf("CPU alarm in the same second = %+v, %v, started %d", second, err, len(sf.started))
	}
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
	if slices.Contains(store.calls, "RecordSample live-rtmp-use1") {
		t.Fatal("a dry run recorded a load sample: it must change nothing")
	}
	raw := []byte(`{"source":"mediascale.operator","account":"123456789012","region":"us-east-1","detail-type":"Scale Request","detail":{"pool":"live-rtmp-use1","direction":"out","count":99,"operator":"x","reason":"y"}}`)
	if _, err := newTestHandlerWith(t, newFakeStore(), sf, eventTime).Handle(context.Background(), raw); err == nil || !strings.Contains(err.Error(), "above the pool's max of 6") {
		t.Fatalf("a count above max: %v", err)
	}
}

// newFakeStoreFrom copies a store's marks, nodes and windows but forgets
// seen events, so the same sample event can be delivered again as a new
// state change.
func newFakeStoreFrom(f *fakeStore) *fakeStore {
	g := newFakeStore()
	maps.Copy(g.lastScaled, f.lastScaled)
	maps.Copy(g.nodes, f.nodes)
	maps.Copy(g.windows, f.windows)
	return g
}

func TestAWarmPoolThatNeedsUpkeepGetsAScaleOutForItAlone(t *testing.T) {
	store, sf := newFakeStore(), &fakeSFN{}
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 1000, 40)}
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if err != nil {
		t.Fatal(err)
	}
	live := d.Pools[0]
	var req events.ScaleRequest
	if live.Pool != "live-rtmp-use1" || live.Action != ActionScale || live.Direction != pool.ScaleOut || len(sf.started) < 1 ||
		json.Unmarshal([]byte(aws.ToString(sf.started[0].Input)), &req) != nil || !req.WarmOnly || req.Desired != 0 || req.Count != 0 {
		t.Fatalf("decision %+v, input %+v; want a warm-only scale-out", live, req)
	}
	if !strings.Contains(live.Reason, "warm pool 0 of 1 ready: filling 1") {
		t.Fatalf("reason %q does not say why", live.Reason)
	}
	if _, marked := store.lastScaled["live-rtmp-use1/out"]; marked {
		t.Fatal("warm-pool upkeep started the scale-out cooldown: the next real growth would wait for it")
	}

	// An alarm's decision to hold leaves the upkeep to the schedule.
	alarmed, sf2 := newFakeStore(), &fakeSFN{}
	alarmed.nodes["live-rtmp-use1"] = store.nodes["live-rtmp-use1"]
	d, err = newTestHandlerWith(t, alarmed, sf2, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-low.json"))
	if err != nil || d.Action != ActionIgnore || len(sf2.started) != 0 {
		t.Fatalf("an alarm's hold started the warm-pool upkeep: %+v, %v", d, err)
	}

	// Under a scale-in's lock the upkeep waits; the drains go on.
	busy := newFakeStoreWithLock(map[string]string{"live-rtmp-use1": "live-rtmp-use1-in-20261121T090000000Z-0badcafe"})
	busy.nodes["live-rtmp-use1"] = store.nodes["live-rtmp-use1"]
	d, err = newTestHandlerWith(t, busy, &fakeSFN{}, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if err != nil || d.Pools[0].Action != ActionIgnore || !strings.HasPrefix(d.Pools[0].Reason, "pool busy") || len(busy.cancelled) != 0 {
		t.Fatalf("decision %+v, %v, cancelled %v; warm-pool upkeep must never cancel a drain", d.Pools[0], err, busy.cancelled)
	}
}

func TestAnAlarmWhoseDecisionFailedIsNotLostToItsDedupeMark(t *testing.T) {
	store := newFakeStore()
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 3000, 90), parked()}
	throttled := &fakeSFN{err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
	raw := readEvent(t, "alarm-connections-high.json")
	_, err := newTestHandlerWith(t, store, throttled, eventTime).Handle(context.Background(), raw)
	var named events.Named
	if !errors.As(err, &named) || named.ErrorName() != events.ErrThrottled {
		t.Fatalf("a throttled start: err = %v, want Throttled for the retry", err)
	}
	if len(store.seen) != 0 || len(store.locks) != 0 {
		t.Fatalf("after the failed start: marks %v, locks %v; want neither", store.seen, store.locks)
	}
	sf := &fakeSFN{}
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), raw)
	if err != nil || d.Action != ActionScale || len(sf.started) != 1 {
		t.Fatalf("the redelivery: %+v, %v, started %d; want it acted on", d, err, len(sf.started))
	}
}

func TestAStateChangeOutsideDeliverableTimeIsRefusedBeforeAnyWrite(t *testing.T) {
	for _, stamp := range []string{"9999-12-31T23:59:59.000+0000", "0000-01-01T00:00:00.000+0000", "2026-11-20T09:00:00.000+0000", "2026-11-21T11:30:00.000+0000"} {
		t.Run(stamp, func(t *testing.T) {
			store, sf := newFakeStore(), &fakeSFN{}
			raw := bytes.ReplaceAll(readEvent(t, "alarm-connections-high.json"), []byte("2026-11-21T10:00:00.123+0000"), []byte(stamp))
			_, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), raw)
			var invalid *events.InvalidInput
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "detail.state.timestamp "+stamp) {
				t.Fatalf("err = %v, want InvalidInput naming the timestamp", err)
			}
			if len(store.calls) != 0 || len(sf.started) != 0 {
				t.Fatalf("a refused event reached the store (%v) or Step Functions (%d)", store.calls, len(sf.started))
			}
		})
	}
}

func TestADecisionWhosePoolChangedBeforeItsLockStartsNothing(t *testing.T) {
	// The alarm's decision reads two nodes and wants four; before it takes
	// the lock, another decision's plan writes two nodes and hands the
	// lock back. Starting now would plan a second round for the same
	// crowd.
	store, sf := overloaded(), &fakeSFN{}
	store.locked = func() {
		store.nodes["live-rtmp-use1"] = append(store.nodes["live-rtmp-use1"],
			fleet.Node{Pool: "live-rtmp-use1", ID: "n-3", State: fleet.Pending}, fleet.Node{Pool: "live-rtmp-use1", ID: "n-4", State: fleet.Pending})
	}
	d, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != ActionIgnore || len(sf.started) != 0 || !strings.Contains(d.Reason, "the pool changed while this decision was made (4 nodes serving or in flight now, 2 when it read them)") {
		t.Fatalf("a decision on a stale count: %+v, started %d", d, len(sf.started))
	}
	if len(store.locks) != 0 {
		t.Fatalf("the lock was kept: %v", store.locks)
	}
	// Unchanged, the same decision starts its execution.
	store, sf = overloaded(), &fakeSFN{}
	d, err = newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionScale || len(sf.started) != 1 {
		t.Fatalf("an unchanged pool: %+v, %v, started %d", d, err, len(sf.started))
	}
}

func TestAnEventFromAnotherAccountOrRegionIsRefusedBeforeAnyWrite(t *testing.T) {
	cases := []struct {
		name, event, from, to, says string
	}{
		{"an alarm from another account", "alarm-connections-high.json", `"account": "123456789012"`, `"account": "999999999999"`, "event from account 999999999999"},
		{"an alarm from another region", "alarm-connections-high.json", `"region": "us-east-1"`, `"region": "eu-west-1"`, "event from region eu-west-1"},
		{"a tick from another account", "schedule-tick.json", `"account": "123456789012"`, `"account": "999999999999"`, "event from account 999999999999"},
		{"an operator request from another region", "operator-scale-out-dry-run.json", `"region": "us-east-1"`, `"region": "us-west-2"`, "event from region us-west-2"},
		{"an operator request that names no account", "operator-scale-out-dry-run.json", `"account": "123456789012",`, ``, "event names no account or region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := readEvent(t, tc.event)
			if !bytes.Contains(raw, []byte(tc.from)) {
				t.Fatalf("%s does not carry %s", tc.event, tc.from)
			}
			raw = bytes.Replace(raw, []byte(tc.from), []byte(tc.to), 1)
			store, sf := overloaded(), &fakeSFN{}
			_, err := newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), raw)
			var invalid *events.InvalidInput
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want InvalidInput saying %q", err, tc.says)
			}
			if len(store.calls) != 0 || len(sf.started) != 0 {
				t.Fatalf("a refused event reached the store (%v) or Step Functions (%d)", store.calls, len(sf.started))
			}
		})
	}
}

// budgeted is the dev configuration with a budget of vcpus for both
// pools: voice (priority 20, 2 vCPUs a node) before live (priority 10, 4).
func budgeted(t *testing.T, store Store, sf Executions, vcpus int, now time.Time) *Handler {
	cfg := devConfig(t)
	cfg.Budget = &pool.Budget{VCPUs: vcpus}
	return NewHandler(cfg, testOrigin, store, sf, &fakeAlarms{}, machines, func() time.Time { return now }, telemetry.NewLogger(io.Discard, "trigger"))
}

// overloaded gives both dev pools two overloaded nodes: live's call for 4
// nodes, voice's for 5.
func overloaded() *fakeStore {
	store := newFakeStore()
	store.nodes["live-rtmp-use1"] = []fleet.Node{reporting("live-rtmp-use1", "n-1", 3000, 40), reporting("live-rtmp-use1", "n-2", 3000, 40)}
	store.nodes["voice-sfu-use1"] = []fleet.Node{reporting("voice-sfu-use1", "v-1", 6000, 40), reporting("voice-sfu-use1", "v-2", 6000, 40)}
	return store
}

func TestATickSharesTheBudgetByPriority(t *testing.T) {
	store, sf := overloaded(), &fakeSFN{}
	// 12 vCPUs run; 10 are left: voice's 3 more nodes take 6, live gets
	// one of the two it wants.
	d, err := budgeted(t, store, sf, 22, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Decision{}
	for _, p := range d.Pools {
		got[p.Pool] = p
	}
	if v := got["voice-sfu-use1"]; v.Recommendation == nil || v.Recommendation.Desired != 5 {
		t.Fatalf("voice: %+v", v)
	}
	live := got["live-rtmp-use1"]
	if live.Recommendation == nil || live.Recommendation.Desired != 3 || !strings.Contains(live.Reason, "budget of 22 vCPUs leaves it 1 of the 3 more nodes it wants") {
		t.Fatalf("live: %+v", live)
	}
	if store.decisions["live-rtmp-use1"].Desired != 3 {
		t.Fatalf("the recorded decision is not the one within the budget: %+v", store.decisions["live-rtmp-use1"])
	}
	// Without a budget both get what they want.
	store, sf = overloaded(), &fakeSFN{}
	d, _ = newTestHandlerWith(t, store, sf, eventTime).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	for _, p := range d.Pools {
		if want := map[string]int{"live-rtmp-use1": 4, "voice-sfu-use1": 5}[p.Pool]; p.Recommendation.Desired != want {
			t.Fatalf("without a budget %s got %d, want %d", p.Pool, p.Recommendation.Desired, want)
		}
	}
}

func TestAnAlarmOnALowerPoolLeavesWhatAHigherPoolWantsToIt(t *testing.T) {
	// voice, of higher priority, is as overloaded as live but its alarm
	// has not fired yet: live's alarm must still leave voice its share.
	store, sf := overloaded(), &fakeSFN{}
	d, err := budgeted(t, store, sf, 20, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Pool != "live-rtmp-use1" || d.Action != ActionIgnore || d.Recommendation.Direction != "" || !strings.Contains(d.Reason, "leaves it 0 of the 3 more nodes") {
		t.Fatalf("live's alarm with voice owed the budget: %+v (%+v)", d, d.Recommendation)
	}
	if len(sf.started) != 0 {
		t.Fatalf("started %d executions", len(sf.started))
	}
}

func TestAHigherPoolInItsCooldownKeepsItsRoomAndAPendingGrowthCounts(t *testing.T) {
	// voice grew a minute ago (its scale-out cooldown is 60 s in dev:
	// 50 s ago it is still inside) and its plan has not written the nodes
	// yet: it holds 5 by its decision and its load still calls for 5.
	store, sf := overloaded(), &fakeSFN{}
	store.lastScaled["voice-sfu-use1/out"] = eventTime.Add(-50 * time.Second)
	store.decisions["voice-sfu-use1"] = fleet.Decision{At: eventTime.Add(-50 * time.Second), Direction: "out", Current: 2, Desired: 5}
	// 4 live x 4 vCPUs... live holds 2 (8 vCPUs), voice 5 (10): 2 left of
	// 20, not one live node.
	d, err := budgeted(t, store, sf, 20, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != ActionIgnore || !strings.Contains(d.Reason, "leaves it 0 of the 3 more nodes") {
		t.Fatalf("live grew into voice's room: %+v", d)
	}
	// Without the pending decision voice holds 2, but its load still
	// calls for 5 through its cooldown: 12 vCPUs run, voice's 3 more take
	// 6 of the 8 left.
	store, sf = overloaded(), &fakeSFN{}
	store.lastScaled["voice-sfu-use1/out"] = eventTime.Add(-50 * time.Second)
	d, err = budgeted(t, store, sf, 20, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionIgnore || !strings.Contains(d.Reason, "leaves it 0 of the 3 more nodes") {
		t.Fatalf("live grew into the room of voice in its cooldown: %+v, %v", d, err)
	}
}

func TestAHigherPoolWhoseHeartbeatsRunLateKeepsItsRoom(t *testing.T) {
	// voice's agents last reported 45 s ago, past the 30 s a heartbeat
	// stays fresh: its own controller cannot act on that load, but the
	// budget must not read its nodes as idle and hand their room to live.
	store, sf := overloaded(), &fakeSFN{}
	for i := range store.nodes["voice-sfu-use1"] {
		store.nodes["voice-sfu-use1"][i].Heartbeat.At = eventTime.Add(-45 * time.Second)
	}
	d, err := budgeted(t, store, sf, 20, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != ActionIgnore || !strings.Contains(d.Reason, "leaves it 0 of the 3 more nodes") || len(sf.started) != 0 {
		t.Fatalf("live grew into the room of voice, whose heartbeats are late: %+v", d)
	}
}

func TestADecisionUnderABudgetWaitsForAnotherToFinish(t *testing.T) {
	store, sf := overloaded(), &fakeSFN{}
	store.locks[budgetLock] = "trigger:other"
	d, err := budgeted(t, store, sf, 100, eventTime).Handle(context.Background(), readEvent(t, "alarm-connections-high.json"))
	if err != nil || d.Action != ActionIgnore || !strings.Contains(d.Reason, "another decision is sharing the environment's budget") || len(sf.started) != 0 {
		t.Fatalf("a decision while the budget is held: %+v, %v", d, err)
	}
	delete(store.locks, budgetLock)
	d, err = budgeted(t, store, sf, 100, eventTime.Add(time.Second)).Handle(context.Background(), readEvent(t, "schedule-tick.json"))
	if err != nil || d.Action != ActionScale || store.locks[budgetLock] != "" {
		t.Fatalf("the tick after: %+v, %v; lock %q", d, err, store.locks[budgetLock])
	}
}
