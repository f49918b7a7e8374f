package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/mediascale/mediascale/scripts/internal/rtmpclient"
	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/dispatch"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// CrowdPoint is one line of the crowd's timeline.
type CrowdPoint struct {
	Seconds  float64 `json:"seconds"`
	Sessions int     `json:"sessions"`
	Serving  int     `json:"serving"`
	InFlight int     `json:"inFlight"`
	Draining int     `json:"draining"`
	// Warm counts the stopped nodes parked in the warm pool.
	Warm      int    `json:"warm"`
	Direction string `json:"direction"`
	Desired   int    `json:"desired"`
	Reason    string `json:"reason"`
}

// CrowdSummary is what a crowd run measured.
type CrowdSummary struct {
	Peak int `json:"peakSessions"`
	// ToCapacitySeconds runs from the first session to enough ACTIVE
	// nodes for the peak at the controller's target; -1 if never.
	ToCapacitySeconds float64 `json:"toCapacitySeconds"`
	NeededNodes       int     `json:"neededNodes"`
	// ToMinSeconds runs from the end of the load to the pool back at min
	// with nothing draining; -1 if not within the run.
	ToMinSeconds      float64 `json:"toMinSeconds"`
	MaxServing        int     `json:"maxServing"`
	Executions        int     `json:"executions"`
	Transitions       int     `json:"transitions"`
	LambdaInvocations int     `json:"lambdaInvocations"`
	LambdaMs          int     `json:"lambdaMs"`
	// Via is how sessions found their node: "dns" (in proportion to the
	// records' weights) or "dispatch" (the entry dispatcher).
	Via string `json:"via"`
	// Refused counts the dispatcher's refusals (each retried after its
	// Retry-After), Spilled the sessions it sent to a fallback pool in
	// another region, by pool and region.
	Refused   int            `json:"refused"`
	Spilled   int            `json:"spilled"`
	SpilledTo map[string]int `json:"spilledTo,omitempty"`
	// AtPeak is what the dispatcher answered each class of the pool at
	// the end of the peak.
	AtPeak []ClassAnswer `json:"atPeak,omitempty"`
	// MaxPerNode and MinPerNode are the players on the busiest and the
	// idlest ACTIVE node at the end of the peak: the spread of sessions
	// over old and new nodes.
	MaxPerNode int          `json:"maxSessionsPerNode"`
	MinPerNode int          `json:"minSessionsPerNode"`
	Timeline   []CrowdPoint `json:"timeline"`
}

// ClassAnswer is the dispatcher's answer to one class.
type ClassAnswer struct {
	Class  string `json:"class"`
	Status int    `json:"status"`
	Pool   string `json:"pool,omitempty"`
	Region string `json:"region,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// crowd drives a bounded flash crowd of real RTMP sessions at a pool of
// the running local cloud (started with LOOP=1): one ffmpeg publisher and
// players of our own, each connecting to a node chosen in proportion to
// the pool's Route53 weights at that moment, as DNS clients would. It
// ramps to the peak, holds it, ends every session, and watches until the
// pool is back at min or the run's time is up. It prints a timeline and
// writes the summary (JSON) and a plot (SVG).
func crowd(args []string) error {
	fs := flag.NewFlagSet("crowd", flag.ExitOnError)
	env := fs.String("env", envOr("MEDIASCALE_ENV", "dev"), "environment")
	poolName := fs.String("pool", "live-rtmp-use1", "a Route53 pool")
	peak := fs.Int("peak", 36, "sessions at the peak (at most 200)")
	ramp := fs.Duration("ramp", 20*time.Second, "time from the first session to the peak")
	hold := fs.Duration("hold", 90*time.Second, "how long the peak lasts")
	limit := fs.Duration("limit", 8*time.Minute, "the whole run's longest time")
	out := fs.String("out", ".localcloud/crowd", "file prefix of the summary (.json) and plot (.svg)")
	via := fs.String("via", "dns", `how sessions find their node: "dns" (the records' weights) or "dispatch" (the entry dispatcher)`)
	class := fs.String("class", "", "with --via dispatch: the sessions' admission class")
	_ = fs.Parse(args)
	if *via != "dns" && *via != "dispatch" {
		return fmt.Errorf("--via %q: dns or dispatch", *via)
	}
	if *peak < 1 || *peak > 200 {
		return fmt.Errorf("--peak %d: between 1 and 200 sessions", *peak)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	cfg, err := localConfig(ctx)
	if err != nil {
		return err
	}
	table, pools, err := deployed(ctx, cfg, *env)
	if err != nil {
		return err
	}
	p, ok := pools.Find(*poolName)
	if !ok || p.Traffic.Route53 == nil {
		return fmt.Errorf("pool %s is not a Route53 pool of %s", *poolName, *env)
	}
	store := fleet.NewStore(dynamodb.NewFromConfig(cfg), table, time.Now)
	records := &weightedRecords{r53: route53.NewFromConfig(cfg), name: p.Traffic.Route53.RecordName, port: p.Probe.MediaPort}
	pick := records.pick
	refused := 0
	spilledTo := map[string]int{}
	var retryAt time.Time
	var client *dispatch.Client
	if *via == "dispatch" {
		url := os.Getenv("MEDIASCALE_DISPATCH_URL")
		if url == "" {
			return errors.New("--via dispatch: MEDIASCALE_DISPATCH_URL is not set (source .localcloud/env)")
		}
		client = dispatch.NewClient(url, cfg.Region, cfg.Credentials, &http.Client{Timeout: 10 * time.Second})
		pick = func(ctx context.Context) (string, error) {
			a, err := client.Dispatch(ctx, p.Name, *class)
			var rej *dispatch.Rejection
			if errors.As(err, &rej) && dispatch.IsRefused(err) {
				refused++
				// The refused client, and every other one waiting,
				// asks again when the answer said.
				retryAt = time.Now().Add(rej.RetryAfter)
				return "", nil
			}
			if err != nil {
				return "", err
			}
			if ip := net.ParseIP(a.Endpoint); ip == nil || !ip.IsLoopback() {
				return "", fmt.Errorf("the dispatcher answered %s: the local cloud's nodes are on loopback", a.Endpoint)
			}
			if a.SpilledFrom != "" {
				spilledTo[a.Pool+" ("+a.Region+")"]++
			}
			return net.JoinHostPort(a.Endpoint, strconv.Itoa(a.Port)), nil
		}
	}
	// Enough nodes for the peak at the controller's target, or the
	// pool's max when the peak is more than the pool may serve.
	needed := capacity.NodesFor(p, float64(*peak))
	router := os.Getenv("MEDIASCALE_ROUTER_URL")
	statsBefore := routerStats(ctx, router)
	runStart := time.Now()

	sessions := &crowdSessions{}
	defer sessions.stopAll()
	summary := CrowdSummary{Peak: *peak, NeededNodes: needed, ToCapacitySeconds: -1, ToMinSeconds: -1, Via: *via}
	var firstSession, loadEnded time.Time
	publisherStarted := false
	fmt.Printf("crowd: %d sessions over %s, held %s, on %s (%d nodes needed at %.1f sessions per node)\n",
		*peak, *ramp, *hold, p.Name, needed, capacity.Targets(p)[pool.MetricConnections])
	fmt.Printf("%6s %8s %7s %8s %8s %4s  %s\n", "t(s)", "sessions", "serving", "inflight", "draining", "warm", "last decision")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		now := time.Now()
		// The crowd: add sessions along the ramp until the peak, then
		// hold, then end them all.
		switch {
		case loadEnded.IsZero() && !firstSession.IsZero() && now.Sub(firstSession) > *ramp+*hold:
			summary.MaxPerNode, summary.MinPerNode = spread(ctx, store, p.Name, p.Probe.MediaPort, sessions.on())
			fmt.Printf("crowd: at the end of the peak the busiest ACTIVE node has %d sessions, the idlest %d (via %s)\n", summary.MaxPerNode, summary.MinPerNode, *via)
			if client != nil {
				summary.AtPeak = askEachClass(ctx, client, p)
			}
			sessions.stopAll()
			loadEnded = now
		case loadEnded.IsZero():
			want := 1
			switch {
			case firstSession.IsZero():
			case *ramp <= 0:
				want = *peak
			default:
				want = min(*peak, 1+int(float64(*peak)*now.Sub(firstSession).Seconds()/ramp.Seconds()))
			}
			// Every client still waiting for a node asks; one the
			// dispatcher refused waits its Retry-After first.
			waiting := 0
			if !now.Before(retryAt) {
				waiting = want - sessions.count()
			}
			for ; waiting > 0; waiting-- {
				addr, err := pick(ctx)
				if err != nil {
					break
				}
				if addr == "" {
					if *via == "dns" {
						break // no node takes traffic yet
					}
					continue
				}
				if firstSession.IsZero() {
					firstSession = now
				}
				if !publisherStarted {
					if err := sessions.publish(addr, int((*ramp + *hold).Seconds())); err == nil {
						publisherStarted = true
						continue
					}
				}
				sessions.play(ctx, addr)
			}
		}
		nodes, err := store.ListNodes(ctx, p.Name)
		if err != nil {
			return err
		}
		pt := CrowdPoint{Seconds: now.Sub(runStart).Seconds(), Sessions: sessions.count()}
		for _, n := range nodes {
			switch {
			case n.State == fleet.Active:
				pt.Serving++
			case n.Serving():
				pt.InFlight++
			case n.State == fleet.Draining:
				pt.Draining++
			case n.State == fleet.Warm:
				pt.Warm++
			}
		}
		if d, ok, _ := store.LastDecision(ctx, p.Name); ok {
			pt.Direction, pt.Desired, pt.Reason = d.Direction, d.Desired, d.Reason
			if pt.Direction == "" {
				pt.Direction = "hold"
			}
		}
		summary.Timeline = append(summary.Timeline, pt)
		summary.MaxServing = max(summary.MaxServing, pt.Serving)
		if int(pt.Seconds)%3 == 0 || len(summary.Timeline) == 1 {
			fmt.Printf("%6.0f %8d %7d %8d %8d %4d  %s %d: %s\n", pt.Seconds, pt.Sessions, pt.Serving, pt.InFlight, pt.Draining, pt.Warm, pt.Direction, pt.Desired, pt.Reason)
		}
		if summary.ToCapacitySeconds < 0 && !firstSession.IsZero() && pt.Serving >= needed {
			summary.ToCapacitySeconds = now.Sub(firstSession).Seconds()
			fmt.Printf("crowd: %d nodes ACTIVE, enough for the peak, %.0f s after the first session\n", pt.Serving, summary.ToCapacitySeconds)
		}
		if !loadEnded.IsZero() && pt.Serving <= p.Capacity.Min && pt.InFlight == 0 && pt.Draining == 0 {
			summary.ToMinSeconds = now.Sub(loadEnded).Seconds()
			fmt.Printf("crowd: the pool is back at its min of %d, %.0f s after the load ended\n", p.Capacity.Min, summary.ToMinSeconds)
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	sessions.stopAll()
	done, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	summary.Executions, summary.Transitions, err = executionCost(done, sfn.NewFromConfig(cfg), *env, runStart)
	if err != nil {
		return err
	}
	summary.LambdaInvocations, summary.LambdaMs = invocationsSince(statsBefore, routerStats(done, router))
	summary.Refused = refused
	summary.SpilledTo = spilledTo
	for _, n := range spilledTo {
		summary.Spilled += n
	}
	if err := writeCrowd(*out, p, summary); err != nil {
		return err
	}
	line, _ := json.Marshal(struct {
		CrowdSummary
		Timeline []CrowdPoint `json:"timeline,omitempty"`
	}{CrowdSummary: summary})
	fmt.Println(string(line))
	if summary.ToCapacitySeconds < 0 || summary.ToMinSeconds < 0 {
		return fmt.Errorf("the pool did not reach capacity and come back to min within %s", *limit)
	}
	return nil
}

// askEachClass asks the dispatcher once for each class of the pool, most
// admitted first, and prints what it answered. The sessions it is handed
// are not played: the dispatcher counts each on its node until that
// node's agent next reports.
func askEachClass(ctx context.Context, client *dispatch.Client, p pool.Pool) []ClassAnswer {
	var out []ClassAnswer
	for _, c := range p.AdmissionClasses() {
		a, err := client.Dispatch(ctx, p.Name, c.Name)
		ans := ClassAnswer{Class: c.Name, Status: http.StatusOK, Pool: a.Pool, Region: a.Region}
		var rej *dispatch.Rejection
		switch {
		case errors.As(err, &rej):
			ans = ClassAnswer{Class: c.Name, Status: rej.Status, Reason: rej.Reason}
		case err != nil:
			ans = ClassAnswer{Class: c.Name, Reason: err.Error()}
		case a.SpilledFrom != "":
			ans.Reason = "spilled: " + a.SpillReason
		}
		out = append(out, ans)
		fmt.Printf("crowd: at the peak a %s is answered %d %s %s %s\n", c.Name, ans.Status, ans.Pool, ans.Region, ans.Reason)
	}
	return out
}

// spread is the players on the busiest and the idlest ACTIVE node.
func spread(ctx context.Context, store *fleet.Store, poolName string, port int, on map[string]int) (most, least int) {
	nodes, err := store.ListNodes(ctx, poolName)
	if err != nil {
		return 0, 0
	}
	least = math.MaxInt
	for _, n := range nodes {
		if n.State != fleet.Active || n.Endpoint == "" {
			continue
		}
		c := on[net.JoinHostPort(n.Endpoint, strconv.Itoa(port))]
		most, least = max(most, c), min(least, c)
	}
	if least == math.MaxInt {
		least = 0
	}
	return most, least
}

// weightedRecords picks a node the way DNS clients spread over a weighted
// record set: each in proportion to its weight.
type weightedRecords struct {
	r53  *route53.Client
	name string
	port int
}

func (w *weightedRecords) pick(ctx context.Context) (string, error) {
	zones, err := w.r53.ListHostedZones(ctx, &route53.ListHostedZonesInput{})
	if err != nil {
		return "", err
	}
	type choice struct {
		addr   string
		weight int64
	}
	var choices []choice
	var total int64
	for _, z := range zones.HostedZones {
		if !strings.HasSuffix(strings.TrimSuffix(w.name, "."), strings.TrimSuffix(aws.ToString(z.Name), ".")) {
			continue
		}
		out, err := w.r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: z.Id, StartRecordName: aws.String(w.name)})
		if err != nil {
			return "", err
		}
		for _, r := range out.ResourceRecordSets {
			if strings.TrimSuffix(aws.ToString(r.Name), ".") != w.name || r.Weight == nil || *r.Weight == 0 || len(r.ResourceRecords) == 0 {
				continue
			}
			host := aws.ToString(r.ResourceRecords[0].Value)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				continue // the network rule: loopback only
			}
			choices = append(choices, choice{net.JoinHostPort(host, strconv.Itoa(w.port)), *r.Weight})
			total += *r.Weight
		}
	}
	if total == 0 {
		return "", nil
	}
	x := rand.Int64N(total)
	for _, c := range choices {
		if x < c.weight {
			return c.addr, nil
		}
		x -= c.weight
	}
	return "", nil
}

// crowdSessions holds the crowd's live sessions.
type crowdSessions struct {
	mu        sync.Mutex
	live      int
	perAddr   map[string]int
	cancels   []context.CancelFunc
	publisher *exec.Cmd
	wg        sync.WaitGroup
}

func (s *crowdSessions) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.live }

// on is how many players are on each address.
func (s *crowdSessions) on() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.perAddr)
}

// play starts one player; it counts as live from the moment it plays
// until it ends, for whatever reason.
func (s *crowdSessions) play(ctx context.Context, addr string) {
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	s.mu.Lock()
	s.cancels = append(s.cancels, cancel)
	s.live++
	if s.perAddr == nil {
		s.perAddr = map[string]int{}
	}
	s.perAddr[addr]++
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = rtmpclient.Play(sctx, addr, "live", "show", ready)
		s.mu.Lock()
		s.live--
		s.perAddr[addr]--
		s.mu.Unlock()
	}()
	select {
	case <-ready:
	case <-time.After(3 * time.Second):
	}
}

// publish starts the show's publisher: ffmpeg pushing a small generated
// stream for at most seconds.
func (s *crowdSessions) publish(addr string, seconds int) error {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", "rtmp://"+addr+"/live/show")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.publisher = cmd
	s.live++
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		s.mu.Lock()
		s.live--
		s.mu.Unlock()
	}()
	return nil
}

func (s *crowdSessions) stopAll() {
	s.mu.Lock()
	cancels, pub := s.cancels, s.publisher
	s.cancels, s.publisher = nil, nil
	s.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	if pub != nil && pub.Process != nil {
		_ = syscall.Kill(-pub.Process.Pid, syscall.SIGTERM)
	}
	s.wg.Wait()
	for i := 0; i < 50 && s.count() > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// executionCost counts the executions of both machines started since a
// time, and the state transitions they made.
func executionCost(ctx context.Context, c *sfn.Client, env string, since time.Time) (executions, transitions int, err error) {
	list, err := c.ListStateMachines(ctx, &sfn.ListStateMachinesInput{})
	if err != nil {
		return 0, 0, err
	}
	for _, m := range list.StateMachines {
		if !strings.HasPrefix(aws.ToString(m.Name), "mediascale-"+env+"-") {
			continue
		}
		ex, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: m.StateMachineArn})
		if err != nil {
			return 0, 0, err
		}
		for _, e := range ex.Executions {
			if aws.ToTime(e.StartDate).Before(since) {
				continue
			}
			executions++
			hist, err := history(ctx, c, aws.ToString(e.ExecutionArn))
			if err != nil {
				return 0, 0, err
			}
			n, _ := countTransitions(hist)
			transitions += n
		}
	}
	return executions, transitions, nil
}
