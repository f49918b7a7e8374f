package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// Route is the dispatcher's one route.
const Route = "/v1/dispatch"

// Refresh is how often the dispatcher reads a pool's nodes: at most once
// a second per pool, however many sessions arrive, so a crowd costs the
// table one query a second and the sessions between are counted on the
// snapshot as they are handed out.
const Refresh = time.Second

// NodeLister is the part of the node store the dispatcher reads.
type NodeLister interface {
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
}

// Handler answers GET /v1/dispatch?pool=<name>&class=<class> behind a
// Lambda function URL.
type Handler struct {
	pools     map[string]pool.Pool
	nodes     NodeLister
	fallbacks FallbackOpener
	now       func() time.Time
	log       *slog.Logger
	mu        sync.Mutex
	cached    map[string]*cacheEntry
}

// cacheEntry is one pool's latest snapshot; its lock makes the requests
// that find it stale wait for one read instead of each making its own.
type cacheEntry struct {
	mu sync.Mutex
	// pool and nodes are the pool and where its nodes are read: this
	// region's table, or a fallback's once it is opened.
	pool  pool.Pool
	nodes NodeLister
	// fallback names a fallback pool, opened lazily: opened is when it
	// was last tried, openErr why that failed.
	fallback *pool.Fallback
	opened   time.Time
	openErr  error
	snap     *Snapshot
	// tried is when the table was last read, err what that read said.
	tried time.Time
	err   error
	rng   *rand.Rand
	// sent holds, by node, when each session of the last heartbeat age
	// was handed to it, for the next snapshot (Snapshot.AddUnreported).
	sent map[string][]time.Time
}

// NewHandler returns the dispatcher for the pools of one environment.
// fallbacks opens the pools in other regions that take what a pool
// refuses; nil when no pool names any.
func NewHandler(pools pool.File, nodes NodeLister, fallbacks FallbackOpener, now func() time.Time, log *slog.Logger) *Handler {
	h := &Handler{pools: map[string]pool.Pool{}, nodes: nodes, fallbacks: fallbacks, now: now, log: log, cached: map[string]*cacheEntry{}}
	for _, p := range pools.Pools {
		h.pools[p.Name] = p
	}
	return h
}

// Answer is the body of a dispatch: where the session goes.
type Answer struct {
	Pool   string `json:"pool"`
	Region string `json:"region"`
	Class  string `json:"class"`
	Node   string `json:"node"`
	// Endpoint is the node's address, Port its media port and URL the
	// two together for the pool's media protocol.
	Endpoint string `json:"endpoint"`
	Port     int    `json:"port"`
	URL      string `json:"url"`
	// UtilizationPercent is the node's busiest metric in percent of its
	// scale-out threshold before this session.
	UtilizationPercent float64 `json:"utilizationPercent"`
	// SpilledFrom is the pool asked for when a fallback pool, in
	// Region, took the session, and SpillReason why the pool asked for
	// could not.
	SpilledFrom string `json:"spilledFrom,omitempty"`
	SpillReason string `json:"spillReason,omitempty"`
}

// Problem is the body of every answer that is not a dispatch.
type Problem struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Pool   string `json:"pool,omitempty"`
	Class  string `json:"class,omitempty"`
	// RetryAfterSeconds repeats the Retry-After header of a refusal.
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
}

// Handle serves one function URL request.
func (h *Handler) Handle(ctx context.Context, req lambdaevents.LambdaFunctionURLRequest) (lambdaevents.LambdaFunctionURLResponse, error) {
	method := req.RequestContext.HTTP.Method
	if req.RawPath != Route {
		return respond(http.StatusNotFound, Problem{Error: "NotFound", Reason: fmt.Sprintf("no route %s: the dispatcher answers GET %s", req.RawPath, Route)}, nil), nil
	}
	if method != http.MethodGet {
		return respond(http.StatusMethodNotAllowed, Problem{Error: "MethodNotAllowed", Reason: fmt.Sprintf("%s %s: only GET", method, Route)},
			map[string]string{"Allow": http.MethodGet}), nil
	}
	q, err := parseQuery(req.RawQueryString)
	if err != nil {
		return respond(http.StatusBadRequest, Problem{Error: "BadRequest", Reason: err.Error()}, nil), nil
	}
	p, ok := h.pools[q.pool]
	if !ok {
		return respond(http.StatusNotFound, Problem{Error: "UnknownPool", Reason: fmt.Sprintf("no pool %q in this environment", q.pool), Pool: q.pool}, nil), nil
	}
	class, err := classOf(p, q.class)
	if err != nil {
		return respond(http.StatusBadRequest, Problem{Error: "BadRequest", Reason: err.Error(), Pool: p.Name, Class: q.class}, nil), nil
	}
	choice, err := h.choose(ctx, h.local(p), class)
	var refused *Refusal
	var tried string
	if err != nil && len(p.Admission.Fallbacks) > 0 {
		var a *Answer
		if a, tried = h.spill(ctx, p, class); a != nil {
			a.SpillReason = reason(err)
			// A session the pool could not take is demand on it even when
			// another region serves it: the pool's controller counts it.
			h.count(ctx, p, class, "spilled", []any{"fallbackPool", a.Pool, "fallbackRegion", a.Region, "node", a.Node, "reason", a.SpillReason},
				0, b2f(errors.As(err, &refused)), 1)
			return respond(http.StatusOK, *a, nil), nil
		}
	}
	switch {
	case errors.As(err, &refused):
		why := refused.Reason
		if tried != "" {
			why += "; " + tried
		}
		h.count(ctx, p, class, "refused", []any{"reason", why}, 0, 1, 0)
		retry := int(math.Ceil(p.RetryAfter().Seconds()))
		return respond(http.StatusServiceUnavailable, Problem{Error: "Refused", Reason: why, Pool: p.Name, Class: class.Name, RetryAfterSeconds: retry},
			map[string]string{"Retry-After": strconv.Itoa(retry)}), nil
	case err != nil:
		h.log.ErrorContext(ctx, "dispatch failed", "pool", p.Name, "class", class.Name, "error", err.Error(), "fallbacks", tried)
		return respond(http.StatusServiceUnavailable, Problem{Error: "Unavailable", Reason: "the pool's node state cannot be read; try again", Pool: p.Name, Class: class.Name, RetryAfterSeconds: 1},
			map[string]string{"Retry-After": "1"}), nil
	}
	h.count(ctx, p, class, "dispatched", []any{"node", choice.Node, "utilizationPercent", round1(choice.Utilization)}, 1, 0, 0)
	return respond(http.StatusOK, answer(p, class, choice), nil), nil
}

func answer(p pool.Pool, class pool.Class, c Choice) *Answer {
	return &Answer{Pool: p.Name, Region: p.Region, Class: class.Name, Node: c.Node, Endpoint: c.Endpoint, Port: p.Probe.MediaPort,
		URL: mediaURL(p, c.Endpoint), UtilizationPercent: round1(c.Utilization)}
}

// spill asks the pool's fallbacks in their order for a node for the
// session, and says what each one answered when none took it.
func (h *Handler) spill(ctx context.Context, p pool.Pool, class pool.Class) (*Answer, string) {
	var why []string
	for _, f := range p.Admission.Fallbacks {
		e, err := h.fallback(ctx, f)
		if err == nil {
			var c pool.Class
			if c, err = classOf(e.pool, class.Name); err == nil {
				var choice Choice
				if choice, err = h.choose(ctx, e, c); err == nil {
					a := answer(e.pool, c, choice)
					a.SpilledFrom = p.Name
					return a, ""
				}
			}
		}
		why = append(why, fmt.Sprintf("fallback %s: %s", f, reason(err)))
	}
	return nil, strings.Join(why, "; ")
}

// reason is what a refusal says, or the error.
func reason(err error) string {
	var refused *Refusal
	if errors.As(err, &refused) {
		return refused.Reason
	}
	return err.Error()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// query is a dispatch request's parameters.
type query struct{ pool, class string }

// parseQuery reads pool and class, each at most once; any other
// parameter is refused, so a misspelt one is not silently ignored.
func parseQuery(raw string) (query, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, fmt.Errorf("query string does not parse: %v", err)
	}
	var q query
	for k, v := range vals {
		if len(v) > 1 {
			return query{}, fmt.Errorf("parameter %s is given %d times; give it once", k, len(v))
		}
		switch k {
		case "pool":
			q.pool = v[0]
		case "class":
			q.class = v[0]
		default:
			return query{}, fmt.Errorf("unknown parameter %q: the dispatcher takes pool and class", k)
		}
	}
	if q.pool == "" {
		return query{}, errors.New("parameter pool is required")
	}
	return q, nil
}

// classOf finds the class a request names. A pool without classes takes
// its default class, named or not; a pool with classes needs one of them.
func classOf(p pool.Pool, name string) (pool.Class, error) {
	classes := p.AdmissionClasses()
	if name == "" && len(p.Admission.Classes) == 0 {
		return classes[0], nil
	}
	for _, c := range classes {
		if c.Name == name {
			return c, nil
		}
	}
	names := classNames(classes)
	if name == "" {
		return pool.Class{}, fmt.Errorf("parameter class is required for pool %s: one of %s", p.Name, strings.Join(names, ", "))
	}
	return pool.Class{}, fmt.Errorf("pool %s has no class %q: one of %s", p.Name, name, strings.Join(names, ", "))
}

// choose hands the session to a node of the pool's current snapshot,
// reading the pool's nodes first when the last read is a second old. When
// that read fails, a snapshot still younger than the pool's heartbeat age
// keeps serving (its nodes were fresh a moment ago), and the read is not
// tried again for a second either: a throttled table must not be asked
// once per request.
func (h *Handler) choose(ctx context.Context, e *cacheEntry, class pool.Class) (Choice, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pool
	now := h.now()
	if e.tried.IsZero() || now.Sub(e.tried) >= Refresh {
		e.tried = now
		nodes, err := e.nodes.ListNodes(ctx, p.Name)
		e.err = err
		if err == nil {
			e.snap = NewSnapshot(p, nodes, now)
			e.forget(now.Add(-p.HeartbeatMaxAge()))
			e.snap.AddUnreported(e.sent)
		} else if e.snap != nil {
			h.log.WarnContext(ctx, "reading nodes failed; dispatching from the last snapshot while it is fresh", "pool", p.Name,
				"region", p.Region, "snapshotAgeMs", now.Sub(e.snap.At).Milliseconds(), "error", err.Error())
		}
	}
	if e.err != nil && (e.snap == nil || now.Sub(e.snap.At) >= p.HeartbeatMaxAge()) {
		return Choice{}, fmt.Errorf("reading nodes of pool %s: %w", p.Name, e.err)
	}
	c, err := e.snap.Choose(class, e.rng)
	if err == nil {
		e.sent[c.Node] = append(e.sent[c.Node], now)
	}
	return c, err
}

// forget drops the sessions handed out before since: every heartbeat that
// counts is younger, so it has them.
func (e *cacheEntry) forget(since time.Time) {
	for id, times := range e.sent {
		k := sort.Search(len(times), func(j int) bool { return times[j].After(since) })
		if k == len(times) {
			delete(e.sent, id)
			continue
		}
		e.sent[id] = times[k:]
	}
}

// local is the entry of one of this environment's pools.
func (h *Handler) local(p pool.Pool) *cacheEntry {
	return h.entry(p.Name, func(e *cacheEntry) { e.pool, e.nodes = p, h.nodes })
}

// fallback is the entry of a fallback pool, opened on its first use and,
// when that fails, tried again after Reopen.
func (h *Handler) fallback(ctx context.Context, f pool.Fallback) (*cacheEntry, error) {
	e := h.entry(f.String(), func(e *cacheEntry) { e.fallback = &f })
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nodes != nil {
		return e, nil
	}
	now := h.now()
	if h.fallbacks == nil {
		return nil, errors.New("this dispatcher opens no fallbacks")
	}
	if !e.opened.IsZero() && now.Sub(e.opened) < Reopen {
		return nil, fmt.Errorf("not reachable %s ago: %w", now.Sub(e.opened).Round(time.Millisecond), e.openErr)
	}
	e.opened = now
	p, nodes, err := h.fallbacks.OpenFallback(ctx, f)
	if err != nil {
		e.openErr = err
		h.log.WarnContext(ctx, "fallback pool cannot be opened; sessions are not spilled there", "fallback", f.String(), "retryInMs", Reopen.Milliseconds(), "error", err.Error())
		return nil, err
	}
	e.pool, e.nodes = p, nodes
	h.log.InfoContext(ctx, "fallback pool opened", "fallback", f.String(), "pool", p.Name, "region", p.Region)
	return e, nil
}

// entry finds or makes a cache entry; fill sets a new one up.
func (h *Handler) entry(key string, fill func(*cacheEntry)) *cacheEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.cached[key]
	if !ok {
		e = &cacheEntry{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), sent: map[string][]time.Time{}}
		fill(e)
		h.cached[key] = e
	}
	return e
}

// count writes the request's one log line, which is also its datapoint:
// SessionsDispatched, SessionsRefused and SessionsSpilled per pool and
// class, and per pool, at one-second resolution: the controller reads
// SessionsRefused by the ten seconds as demand no node has seen, and a
// crowd is over in less than a minute. A spilled session is refused by
// its pool (demand there) and served in the fallback's region.
func (h *Handler) count(ctx context.Context, p pool.Pool, class pool.Class, msg string, extra []any, dispatched, refused, spilled float64) {
	dims := []telemetry.Dimension{{Name: "Pool", Value: p.Name}, {Name: "Class", Value: class.Name}}
	metrics := []telemetry.Metric{
		{Name: telemetry.SessionsDispatched, Value: dispatched, Unit: telemetry.Count, HighResolution: true},
		{Name: telemetry.SessionsRefused, Value: refused, Unit: telemetry.Count, HighResolution: true},
	}
	if len(p.Admission.Fallbacks) > 0 {
		metrics = append(metrics, telemetry.Metric{Name: telemetry.SessionsSpilled, Value: spilled, Unit: telemetry.Count, HighResolution: true})
	}
	if err := telemetry.EmitEvent(ctx, h.log, msg, extra, h.now(), dims, [][]string{{"Pool"}, {"Pool", "Class"}}, metrics...); err != nil {
		h.log.ErrorContext(ctx, "dispatch metrics not published", "pool", p.Name, "error", err.Error())
	}
}

// mediaURL is where a client connects for the pool's media protocol.
func mediaURL(p pool.Pool, host string) string {
	hostPort := host + ":" + strconv.Itoa(p.Probe.MediaPort)
	if strings.Contains(host, ":") {
		hostPort = "[" + host + "]:" + strconv.Itoa(p.Probe.MediaPort)
	}
	if p.Media == pool.MediaRTMP {
		return "rtmp://" + hostPort + "/"
	}
	return hostPort
}

func respond(status int, body any, headers map[string]string) lambdaevents.LambdaFunctionURLResponse {
	raw, err := json.Marshal(body)
	if err != nil {
		raw = []byte(`{"error":"Internal","reason":"answer does not encode"}`)
		status = http.StatusInternalServerError
	}
	h := map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}
	for k, v := range headers {
		h[k] = v
	}
	return lambdaevents.LambdaFunctionURLResponse{StatusCode: status, Headers: h, Body: string(raw)}
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func classNames(classes []pool.Class) []string {
	out := make([]string, len(classes))
	for i, c := range classes {
		out[i] = c.Name
	}
	return out
}
