package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/scripts/internal/rtmpclient"
	"github.com/mediascale/mediascale/shared/dispatch"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// sessionsOn sums what the agents of the pool's ACTIVE nodes last reported.
func (c *cloud) sessionsOn() map[string]int {
	out := map[string]int{}
	for _, n := range c.nodesWhere(func(n fleet.Node) bool { return n.State == fleet.Active }) {
		if n.Heartbeat != nil {
			out[n.ID] = int(n.Heartbeat.Load.Connections)
		}
	}
	return out
}

// TestTheDispatcherFillsNodesByRoomAndRefusesByClass runs the deployed
// dispatcher behind its function URL on the closed loop (LOOP=1): two
// nodes of real nginx-rtmp with their agents, a pool held at two nodes
// (scripts/localaws/testdata/dispatch.yaml: viewers to 8 sessions a node,
// premium to 10, publishers to 12). Every session it hands out is played
// on the node it names.
func TestTheDispatcherFillsNodesByRoomAndRefusesByClass(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "LOOP=1", "POOLS=scripts/localaws/testdata/dispatch.yaml")
	ctx := context.Background()
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := dispatch.NewClient(c.env["MEDIASCALE_DISPATCH_URL"], c.cfg.Region, aws.NewCredentialsCache(credentialsOf(creds)), &http.Client{Timeout: 30 * time.Second})
	waitFor(t, "two ACTIVE nodes reporting", 3*time.Minute, func() bool { return len(c.sessionsOn()) == 2 })
	p := &players{}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	t.Cleanup(p.stop)
	perNode := map[string]int{}
	play := func(a dispatch.Answer) {
		t.Helper()
		if ip := net.ParseIP(a.Endpoint); ip == nil || !ip.IsLoopback() {
			t.Fatalf("dispatched to %q: the local cloud's nodes are on loopback", a.Endpoint)
		}
		ready := make(chan struct{})
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = rtmpclient.Play(p.ctx, net.JoinHostPort(a.Endpoint, strconv.Itoa(a.Port)), "live", "show", ready)
		}()
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatalf("session on %s did not start", a.Endpoint)
		}
		perNode[a.Node]++
	}

	t.Run("an unsigned request is refused by the function URL", func(t *testing.T) {
		res, err := http.Get(c.env["MEDIASCALE_DISPATCH_URL"] + dispatch.Route + "?pool=live-rtmp-use1&class=viewer")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("unsigned: %d, want 403", res.StatusCode)
		}
	})

	t.Run("a bad request says why", func(t *testing.T) {
		_, err := client.Dispatch(ctx, "live-rtmp-use1", "vip")
		var rej *dispatch.Rejection
		if !errors.As(err, &rej) || rej.Status != http.StatusBadRequest || rej.Reason == "" {
			t.Fatalf("class vip: %v", err)
		}
		if _, err := client.Dispatch(ctx, "vod-use1", "viewer"); !errors.As(err, &rej) || rej.Status != http.StatusNotFound {
			t.Fatalf("unknown pool: %v", err)
		}
	})

	t.Run("sessions spread over the nodes by their room", func(t *testing.T) {
		for i := 0; i < 12; i++ {
			a, err := client.Dispatch(ctx, "live-rtmp-use1", "viewer")
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			play(a)
		}
		if len(perNode) != 2 {
			t.Fatalf("12 sessions went to %v: both nodes had room", perNode)
		}
		for id, n := range perNode {
			if n < 5 || n > 7 {
				t.Fatalf("sessions per node %v (%s has %d): two equal nodes should share about evenly", perNode, id, n)
			}
		}
	})

	t.Run("viewers are refused at their ceiling while publishers are admitted", func(t *testing.T) {
		// The dispatcher counts what it handed out since each agent's
		// last report, so it refuses as the nodes reach 8 sessions, not
		// an agent interval later.
		var rej *dispatch.Rejection
		for len(perNode) == 0 || sum(perNode) < 24 {
			a, err := client.Dispatch(ctx, "live-rtmp-use1", "viewer")
			if errors.As(err, &rej) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			play(a)
		}
		if rej == nil || rej.Status != http.StatusServiceUnavailable || rej.RetryAfter != 2*time.Second || !dispatch.IsRefused(rej) {
			t.Fatalf("viewers admitted %v, then %v; want a 503 with Retry-After 2 s", perNode, rej)
		}
		for id, n := range perNode {
			if n < 8 || n > 9 {
				t.Fatalf("viewers admitted %v: %s has %d, the viewer ceiling is 8 a node", perNode, id, n)
			}
		}
		t.Logf("viewers admitted %v, then refused: %s", perNode, rej.Reason)
		a, err := client.Dispatch(ctx, "live-rtmp-use1", "publisher")
		if err != nil {
			t.Fatalf("a publisher with both nodes full for viewers: %v", err)
		}
		play(a)
	})

	t.Run("an operator asks the dispatcher with msctl", func(t *testing.T) {
		msctl := c.msctl(t)
		out, err := msctl("dispatch", "live-rtmp-use1", "--class", "viewer")
		if err == nil || !strings.Contains(out, `"error": "Refused"`) {
			t.Fatalf("msctl dispatch of a viewer: %v\n%s", err, out)
		}
		out, err = msctl("dispatch", "live-rtmp-use1", "--class", "publisher")
		var a dispatch.Answer
		if err != nil || json.Unmarshal([]byte(out), &a) != nil || a.Node == "" || a.Class != "publisher" {
			t.Fatalf("msctl dispatch of a publisher: %v\n%s", err, out)
		}
		play(a)
	})

	t.Run("refusals reach CloudWatch per pool and class", func(t *testing.T) {
		cw := cloudwatch.NewFromConfig(c.cfg)
		waitFor(t, "a SessionsRefused datapoint for viewers", time.Minute, func() bool {
			out, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
				Namespace: aws.String(telemetry.Namespace), MetricName: aws.String(dispatch.MetricRefused),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live-rtmp-use1")}, {Name: aws.String("Class"), Value: aws.String("viewer")}},
				StartTime:  aws.Time(time.Now().Add(-10 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
				Period: aws.Int32(60), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum},
			})
			if err != nil {
				t.Fatal(err)
			}
			total := 0.0
			for _, d := range out.Datapoints {
				total += aws.ToFloat64(d.Sum)
			}
			return total >= 1
		})
	})

	t.Run("the controller counts the refused sessions as demand", func(t *testing.T) {
		// Sixty more refusals in the minute, of clients told to ask again
		// in 2 s: two sessions waiting outside the pool.
		for i := 0; i < 60; i++ {
			if _, err := client.Dispatch(ctx, "live-rtmp-use1", "viewer"); !dispatch.IsRefused(err) {
				t.Fatalf("viewer %d with the pool full for viewers: %v", i, err)
			}
		}
		var last fleet.Decision
		counted := regexp.MustCompile(`counting (\d+) sessions the dispatcher refused`)
		waitFor(t, "a decision that counts two refused sessions", time.Minute, func() bool {
			d, ok, err := c.store.LastDecision(ctx, "live-rtmp-use1")
			last = d
			m := counted.FindStringSubmatch(d.Reason)
			return err == nil && ok && m != nil && m[1] == "2"
		})
		t.Logf("decision: %s", last.Reason)
	})
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// credentialsOf serves fixed credentials.
type credentialsOf aws.Credentials

func (c credentialsOf) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(c), nil
}
