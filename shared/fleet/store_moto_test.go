package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newMotoStore starts moto, creates the node table from the shared
// definition and returns a store on it plus the raw client for assertions.
func newMotoStore(t *testing.T) (*Store, *dynamodb.Client, *clock) {
	t.Helper()
	srv := motoserver.Start(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(srv.Config(ctx))
	if err := motoserver.Table(ctx, db, TableDefinition("nodes")); err != nil {
		t.Fatalf("creating table: %v", err)
	}
	c := &clock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	return NewStore(db, "nodes", c.Now), db, c
}

func itemCount(t *testing.T, db *dynamodb.Client, pool string) int {
	t.Helper()
	out, err := db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String("nodes"),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(poolKey(pool))},
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

func errorName(err error) string {
	var named events.Named
	if errors.As(err, &named) {
		return named.ErrorName()
	}
	return ""
}

func TestNodeLifecycleOnMoto(t *testing.T) {
	s, _, clk := newMotoStore(t)
	ctx := context.Background()
	n, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1", AZ: "us-east-1a", InstanceType: "c7g.large"})
	if err != nil {
		t.Fatal(err)
	}
	if n.State != Pending || n.Version != 1 {
		t.Fatalf("new node = %s v%d, want PENDING v1", n.State, n.Version)
	}
	clk.Advance(time.Second)
	n, err = s.Transition(ctx, "live", "n1", Pending, 1, Provisioning, Change{InstanceID: "i-0123", Execution: "exec-1"})
	if err != nil {
		t.Fatal(err)
	}
	if n.State != Provisioning || n.Version != 2 || n.InstanceID != "i-0123" || n.AZ != "us-east-1a" {
		t.Fatalf("after transition: %+v", n)
	}
	if !n.UpdatedAt.After(n.CreatedAt) {
		t.Fatalf("updatedAt %s not after createdAt %s", n.UpdatedAt, n.CreatedAt)
	}
	w := 30
	if n, err = s.Update(ctx, "live", "n1", Provisioning, 2, Change{Weight: &w}); err != nil || n.Weight != 30 || n.Version != 3 {
		t.Fatalf("update = %+v, %v", n, err)
	}
	got, err := s.GetNode(ctx, "live", "n1")
	if err != nil || got.Version != 3 || got.Weight != 30 || got.State != Provisioning {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1"}); errorName(err) != events.ErrStateConflict {
		t.Fatalf("creating an existing node: err = %v, want StateConflict", err)
	}
	if _, err := s.GetNode(ctx, "live", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing node: err = %v, want ErrNotFound", err)
	}
}

func TestTwoWritersRaceExactlyOneWins(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	if _, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1"}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, errs[i] = s.Transition(ctx, "live", "n1", Pending, 1, Provisioning, Change{Execution: string(rune('a' + i))})
		}(i)
	}
	close(start)
	wg.Wait()
	wins, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errorName(err) == events.ErrStateConflict:
			conflicts++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("wins=%d conflicts=%d, want 1 and %d", wins, conflicts, writers-1)
	}
	n, _ := s.GetNode(ctx, "live", "n1")
	if n.Version != 2 || n.State != Provisioning {
		t.Fatalf("node after race = %s v%d, want PROVISIONING v2", n.State, n.Version)
	}
}

func TestStaleWritesAreRefused(t *testing.T) {
	cases := []struct {
		name    string
		from    State
		version int64
		to      State
		want    string
		detail  string
	}{
		{"a write with an old version is a conflict", Pending, 0, Provisioning, events.ErrStateConflict, "found PENDING at version 1"},
		{"a write expecting the wrong state is a conflict", Provisioning, 1, Deploying, events.ErrStateConflict, "found PENDING at version 1"},
		{"a transition not in the table is refused", Pending, 1, Active, events.ErrInvalidInput, "PENDING -> ACTIVE is not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, db, _ := newMotoStore(t)
			ctx := context.Background()
			if _, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1"}); err != nil {
				t.Fatal(err)
			}
			before, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("nodes"), Key: key(poolKey("live"), nodePrefix+"n1")})
			_, err := s.Transition(ctx, "live", "n1", tc.from, tc.version, tc.to, Change{Reason: "should not land"})
			if errorName(err) != tc.want {
				t.Fatalf("err = %v (%s), want %s", err, errorName(err), tc.want)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("err = %q, want it to say %q", err, tc.detail)
			}
			after, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("nodes"), Key: key(poolKey("live"), nodePrefix+"n1")})
			if len(after.Item) != len(before.Item) || after.Item["reason"] != nil {
				t.Fatalf("the refused write changed the record: %v", after.Item)
			}
		})
	}
}

func TestUpdatingAMissingNodeCreatesNothing(t *testing.T) {
	s, db, _ := newMotoStore(t)
	_, err := s.Transition(context.Background(), "live", "ghost", Pending, 1, Provisioning, Change{})
	if errorName(err) != events.ErrStateConflict {
		t.Fatalf("err = %v, want StateConflict", err)
	}
	if n := itemCount(t, db, "live"); n != 0 {
		t.Fatalf("pool has %d items, want 0", n)
	}
}

func TestListNodesQueriesOnePoolAcrossPages(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if _, err := s.CreateNode(ctx, Node{Pool: "live", ID: string(rune('A' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateNode(ctx, Node{Pool: "voice", ID: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLock(ctx, "live", "exec-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	nodes, err := s.ListNodes(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 30 {
		t.Fatalf("listed %d nodes, want 30 (no lock, no other pool)", len(nodes))
	}
	for _, n := range nodes {
		if n.Pool != "live" {
			t.Fatalf("listed a node of pool %s", n.Pool)
		}
	}
}

func TestPoolLockLeases(t *testing.T) {
	s, _, clk := newMotoStore(t)
	ctx := context.Background()
	if _, err := s.AcquireLock(ctx, "live", "exec-1", time.Minute); err != nil {
		t.Fatalf("first acquire: %v", err)
	}
	_, err := s.AcquireLock(ctx, "live", "exec-2", time.Minute)
	if errorName(err) != events.ErrLockHeld || !strings.Contains(err.Error(), "exec-1") {
		t.Fatalf("live lease taken: err = %v, want LockHeld naming exec-1", err)
	}
	if _, err := s.AcquireLock(ctx, "live", "exec-1", time.Minute); err != nil {
		t.Fatalf("the holder retaking its own lock: %v", err)
	}
	clk.Advance(50 * time.Second)
	if _, err := s.RenewLock(ctx, "live", "exec-1", time.Minute); err != nil {
		t.Fatalf("renew: %v", err)
	}
	clk.Advance(50 * time.Second)
	if _, err := s.AcquireLock(ctx, "live", "exec-2", time.Minute); errorName(err) != events.ErrLockHeld {
		t.Fatalf("a renewed lease was taken over: %v", err)
	}
	clk.Advance(11 * time.Second)
	if _, err := s.AcquireLock(ctx, "live", "exec-2", time.Minute); err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	if _, err := s.RenewLock(ctx, "live", "exec-1", time.Minute); errorName(err) != events.ErrStateConflict {
		t.Fatalf("the old owner renewed a lease it lost: %v", err)
	}
	if released, err := s.ReleaseLock(ctx, "live", "exec-1"); err != nil || released {
		t.Fatalf("old owner released the new owner's lock: released=%v err=%v", released, err)
	}
	l, ok, err := s.GetLock(ctx, "live")
	if err != nil || !ok || l.Owner != "exec-2" {
		t.Fatalf("lock = %+v ok=%v err=%v, want exec-2", l, ok, err)
	}
	if released, err := s.ReleaseLock(ctx, "live", "exec-2"); err != nil || !released {
		t.Fatalf("release: released=%v err=%v", released, err)
	}
	if released, err := s.ReleaseLock(ctx, "live", "exec-2"); err != nil || released {
		t.Fatalf("second release: released=%v err=%v, want an idempotent no-op", released, err)
	}
	if _, err := s.AcquireLock(ctx, "live", "exec-3", time.Minute); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
}

// The pressure loop's lease lives beside the pool lock and never blocks
// it: a loop starts scaling executions that take the lock in turn.
func TestPressureLoopLeasesOnMoto(t *testing.T) {
	s, _, clk := newMotoStore(t)
	ctx := context.Background()
	if _, err := s.ClaimLoop(ctx, "live", "loop-1", 45*time.Second); err != nil {
		t.Fatalf("claim: %v", err)
	}
	if _, err := s.AcquireLock(ctx, "live", "exec-1", time.Minute); err != nil {
		t.Fatalf("the pool lock beside a running loop: %v", err)
	}
	_, err := s.ClaimLoop(ctx, "live", "loop-2", 45*time.Second)
	if errorName(err) != events.ErrLockHeld || !strings.Contains(err.Error(), "pressure loop is held by loop-1") {
		t.Fatalf("a second loop: err = %v, want LockHeld naming loop-1", err)
	}
	clk.Advance(30 * time.Second)
	if _, err := s.RenewLoop(ctx, "live", "loop-1", 45*time.Second); err != nil {
		t.Fatalf("renew: %v", err)
	}
	clk.Advance(46 * time.Second)
	if _, err := s.RenewLoop(ctx, "live", "loop-1", 45*time.Second); errorName(err) != events.ErrStateConflict {
		t.Fatalf("a loop renewed a lease it let expire: %v", err)
	}
	if _, err := s.ClaimLoop(ctx, "live", "loop-2", 45*time.Second); err != nil {
		t.Fatalf("a new loop after the old one stopped renewing: %v", err)
	}
	if ended, err := s.EndLoop(ctx, "live", "loop-1"); err != nil || ended {
		t.Fatalf("the old loop ended the new one's lease: %v, %v", ended, err)
	}
	if ended, err := s.EndLoop(ctx, "live", "loop-2"); err != nil || !ended {
		t.Fatalf("end: %v, %v", ended, err)
	}
	if l, ok, err := s.GetLock(ctx, "live"); err != nil || !ok || l.Owner != "exec-1" {
		t.Fatalf("the pool lock after the loops: %+v %v %v, want exec-1's untouched", l, ok, err)
	}
}

func TestCooldownMarksNeverMoveBackwards(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	if _, ok, err := s.LastScaled(ctx, "live", "out"); err != nil || ok {
		t.Fatalf("fresh pool: ok=%v err=%v", ok, err)
	}
	t1 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	if err := s.MarkScaled(ctx, "live", "out", t1, "exec-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkScaled(ctx, "live", "out", t1.Add(-time.Hour), "exec-0"); err != nil {
		t.Fatal(err)
	}
	at, ok, err := s.LastScaled(ctx, "live", "out")
	if err != nil || !ok || !at.Equal(t1) {
		t.Fatalf("last scale-out = %s ok=%v err=%v, want %s", at, ok, err, t1)
	}
	if _, ok, _ := s.LastScaled(ctx, "live", "in"); ok {
		t.Fatal("a scale-out mark was read as a scale-in")
	}
}

func TestDedupeMarksExpire(t *testing.T) {
	s, _, clk := newMotoStore(t)
	ctx := context.Background()
	first, err := s.MarkOnce(ctx, "alarm-x@t1", time.Hour)
	if err != nil || !first {
		t.Fatalf("first mark: first=%v err=%v", first, err)
	}
	if again, err := s.MarkOnce(ctx, "alarm-x@t1", time.Hour); err != nil || again {
		t.Fatalf("duplicate mark: first=%v err=%v", again, err)
	}
	if other, err := s.MarkOnce(ctx, "alarm-x@t2", time.Hour); err != nil || !other {
		t.Fatalf("another key: first=%v err=%v", other, err)
	}
	clk.Advance(time.Hour + time.Second)
	if again, err := s.MarkOnce(ctx, "alarm-x@t1", time.Hour); err != nil || !again {
		t.Fatalf("mark past its TTL: first=%v err=%v, want true", again, err)
	}
	if err := s.Unmark(ctx, "alarm-x@t2"); err != nil {
		t.Fatal(err)
	}
	if again, err := s.MarkOnce(ctx, "alarm-x@t2", time.Hour); err != nil || !again {
		t.Fatalf("mark after Unmark: first=%v err=%v, want true", again, err)
	}
	if err := s.Unmark(ctx, "never-marked"); err != nil {
		t.Fatalf("removing a mark that is not there: %v", err)
	}
}

func TestPauseAndResumeOnMoto(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	if st, err := s.Status(ctx, "live"); err != nil || st.Paused {
		t.Fatalf("a fresh pool: %+v, %v", st, err)
	}
	if err := s.SetPaused(ctx, "live", true, "maintenance window", "sre-alice"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, "live")
	if err != nil || !st.Paused || st.Reason != "maintenance window" || st.Operator != "sre-alice" || st.Since.IsZero() {
		t.Fatalf("paused pool: %+v, %v", st, err)
	}
	if other, _ := s.Status(ctx, "voice"); other.Paused {
		t.Fatal("pausing one pool paused another")
	}
	if err := s.SetPaused(ctx, "live", false, "done", "sre-alice"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, "live"); st.Paused {
		t.Fatal("resume did not take")
	}
}

func TestDrainCancelMarksOnMoto(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	if c, err := s.DrainsCancelled(ctx, "live", "in-1"); err != nil || c {
		t.Fatalf("a fresh execution: cancelled=%v err=%v", c, err)
	}
	if err := s.CancelDrains(ctx, "live", "in-1", "out-7"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.DrainsCancelled(ctx, "live", "in-1"); !c {
		t.Fatal("the cancel mark was not read back")
	}
	if c, _ := s.DrainsCancelled(ctx, "live", "in-2"); c {
		t.Fatal("cancelling one execution cancelled another")
	}
}

func TestAWarmNodesGoalAndRevisionSurviveItsMovesOnMoto(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	n, err := s.CreateNode(ctx, Node{Pool: "live", ID: "w1", Goal: events.GoalWarm, Revision: "lt-0abc:3/1f2e3d4c"})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []State{Provisioning, Deploying, Probing, Warm} {
		if n, err = s.Transition(ctx, "live", "w1", n.State, n.Version, to, Change{InstanceID: "i-w1"}); err != nil {
			t.Fatalf("to %s: %v", to, err)
		}
	}
	if n, err = s.Transition(ctx, "live", "w1", Warm, n.Version, Pending, Change{Execution: "out-1", Goal: events.GoalServe}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetNode(ctx, "live", "w1")
	if err != nil || got.State != Pending || got.Goal != events.GoalServe || got.Revision != "lt-0abc:3/1f2e3d4c" || got.InstanceID != "i-w1" || !got.Serving() {
		t.Fatalf("claimed warm node = %+v, %v; want PENDING to serve, its revision and instance kept", got, err)
	}
}

func TestTheFirstPlanRecordedForAnExecutionWinsOnMoto(t *testing.T) {
	s, _, _ := newMotoStore(t)
	ctx := context.Background()
	first := events.Plan{Pool: "live", Execution: "exec-1", Direction: "out", Nodes: []events.NodeTask{{Node: "n-a", Goal: events.GoalServe}, {Node: "n-b", Goal: events.GoalWarm}}}
	got, err := s.RecordPlan(ctx, first)
	if err != nil || len(got.Nodes) != 2 {
		t.Fatalf("first record = %+v, %v", got, err)
	}
	retry := events.Plan{Pool: "live", Execution: "exec-1", Direction: "out", Nodes: []events.NodeTask{{Node: "n-c"}}}
	got, err = s.RecordPlan(ctx, retry)
	if err != nil || len(got.Nodes) != 2 || got.Nodes[0].Node != "n-a" || got.Nodes[1].Goal != events.GoalWarm {
		t.Fatalf("a retry's record = %+v, %v; want the first plan back", got, err)
	}
	other, err := s.RecordPlan(ctx, events.Plan{Pool: "live", Execution: "exec-2", Nodes: []events.NodeTask{{Node: "n-d"}}})
	if err != nil || len(other.Nodes) != 1 || other.Nodes[0].Node != "n-d" {
		t.Fatalf("another execution's plan = %+v, %v", other, err)
	}
	if nodes, _ := s.ListNodes(ctx, "live"); len(nodes) != 0 {
		t.Fatalf("plans are listed as nodes: %+v", nodes)
	}
}

// lostAnswers sends every write twice and returns the second answer, as the
// SDK does when the first answer is lost on the way back and it retries.
type lostAnswers struct{ *dynamodb.Client }

func (l lostAnswers) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, err := l.Client.PutItem(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.Client.PutItem(ctx, in, opts...)
}

func (l lostAnswers) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if _, err := l.Client.UpdateItem(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.Client.UpdateItem(ctx, in, opts...)
}

func TestAWriteRetriedAfterItsAnswerWasLostIsItsOwnResultOnMoto(t *testing.T) {
	_, db, c := newMotoStore(t)
	s := NewStore(lostAnswers{db}, "nodes", c.Now)
	ctx := context.Background()
	n, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1"})
	if err != nil || n.Version != 1 {
		t.Fatalf("retried create = %+v, %v; want the node at version 1", n, err)
	}
	c.now = c.now.Add(time.Second)
	n, err = s.Transition(ctx, "live", "n1", Pending, 1, Provisioning, Change{InstanceID: "i-1"})
	if err != nil || n.Version != 2 || n.State != Provisioning || n.InstanceID != "i-1" {
		t.Fatalf("retried transition = %+v, %v; want PROVISIONING at version 2", n, err)
	}

	t.Run("a dedupe mark whose answer was lost is still the first", func(t *testing.T) {
		if first, err := s.MarkOnce(ctx, "alarm-x@t1", time.Hour); err != nil || !first {
			t.Fatalf("retried mark: first=%v err=%v; want true", first, err)
		}
		if again, err := s.MarkOnce(ctx, "alarm-x@t1", time.Hour); err != nil || again {
			t.Fatalf("a second delivery of the same change: first=%v err=%v; want false", again, err)
		}
	})

	t.Run("another writer's record is still a conflict", func(t *testing.T) {
		if _, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n1"}); errorName(err) != events.ErrStateConflict {
			t.Fatalf("creating an existing node: err = %v, want StateConflict", err)
		}
		c.now = c.now.Add(time.Second)
		if _, err := s.Transition(ctx, "live", "n1", Pending, 1, Provisioning, Change{}); errorName(err) != events.ErrStateConflict {
			t.Fatalf("a stale transition: err = %v, want StateConflict", err)
		}
	})
}

func TestAnnouncedShowsOnMoto(t *testing.T) {
	s, _, clk := newMotoStore(t)
	ctx := context.Background()
	start := clk.Now().Add(2 * time.Hour).Truncate(time.Second).UTC()
	sh, err := s.AnnounceShow(ctx, Show{Pool: "live", ID: "final", Start: start, Peak: 40000, RampSeconds: 120, By: "sre", Reason: "cup final"})
	if err != nil || sh.AnnouncedAt.IsZero() {
		t.Fatalf("announce: %+v, %v", sh, err)
	}
	if _, err := s.AnnounceShow(ctx, Show{Pool: "live", ID: "final", Start: start, Peak: 1, By: "sre"}); errorName(err) != events.ErrStateConflict {
		t.Fatalf("a second show of the same id: %v, want StateConflict", err)
	}
	if _, err := s.AnnounceShow(ctx, Show{Pool: "live", ID: "news", Start: start.Add(time.Hour), Peak: 5000, By: "sre"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNode(ctx, Node{Pool: "live", ID: "n-1"}); err != nil {
		t.Fatal(err)
	}
	shows, err := s.Shows(ctx, "live")
	if err != nil || len(shows) != 2 || shows[0].ID != "final" || !shows[0].Start.Equal(start) || shows[0].Peak != 40000 || shows[0].Ramp() != 2*time.Minute || shows[0].Cancelled() {
		t.Fatalf("shows = %+v, %v", shows, err)
	}
	if nodes, _ := s.ListNodes(ctx, "live"); len(nodes) != 1 {
		t.Fatalf("the shows are listed as nodes: %+v", nodes)
	}
	if cancelled, err := s.CancelShow(ctx, "live", "final", "sre"); err != nil || !cancelled {
		t.Fatalf("cancel: %v, %v", cancelled, err)
	}
	if cancelled, err := s.CancelShow(ctx, "live", "final", "sre"); err != nil || cancelled {
		t.Fatalf("cancelling twice: %v, %v; want an unchanged no-op", cancelled, err)
	}
	if _, err := s.CancelShow(ctx, "live", "nope", "sre"); errorName(err) != events.ErrInvalidInput {
		t.Fatalf("cancelling a show that does not exist: %v", err)
	}
	shows, _ = s.Shows(ctx, "live")
	if !shows[0].Cancelled() || shows[0].CancelledBy != "sre" || shows[1].Cancelled() {
		t.Fatalf("after the cancel: %+v", shows)
	}
}
