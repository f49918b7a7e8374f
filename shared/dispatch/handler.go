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
	pools  map[string]pool.Pool
	nodes  NodeLister
	now    func() time.Time
	log    *slog.Logger
	mu     sync.Mutex
	cached map[string]*cacheEntry
}

// cacheEntry is one pool's latest snapshot; its lock makes the requests
// that find it stale wait for one read instead of each making its own.
type cacheEntry struct {
	mu   sync.Mutex
	snap *Snapshot
	// tried is when the table was last read, err what that read said.
	tried time.Time
	err   error
	rng   *rand.Rand
	// sent holds, by node, when each session of the last heartbeat age
	// was handed to it, for the next snapshot (Snapshot.AddUnreported).
	sent map[string][]time.Time
}

// NewHandler returns the dispatcher for the pools of one environment.
func NewHandler(pools pool.File, nodes NodeLister, now func() time.Time, log *slog.Logger) *Handler {
	h := &Handler{pools: map[string]pool.Pool{}, nodes: nodes, now: now, log: log, cached: map[string]*cacheEntry{}}
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
	choice, err := h.choose(ctx, p, class)
	var refused *Refusal
	switch {
	case errors.As(err, &refused):
		h.count(ctx, p, class, "refused", []any{"reason", refused.Reason}, 0, 1)
		retry := int(math.Ceil(p.RetryAfter().Seconds()))
		return respond(http.StatusServiceUnavailable, Problem{Error: "Refused", Reason: refused.Reason, Pool: p.Name, Class: class.Name, RetryAfterSeconds: retry},
			map[string]string{"Retry-After": strconv.Itoa(retry)}), nil
	case err != nil:
		h.log.ErrorContext(ctx, "dispatch failed", "pool", p.Name, "class", class.Name, "error", err.Error())
		return respond(http.StatusServiceUnavailable, Problem{Error: "Unavailable", Reason: "the pool's node state cannot be read; try again", Pool: p.Name, Class: class.Name, RetryAfterSeconds: 1},
			map[string]string{"Retry-After": "1"}), nil
	}
	h.count(ctx, p, class, "dispatched", []any{"node", choice.Node, "utilizationPercent", round1(choice.Utilization)}, 1, 0)
	a := Answer{Pool: p.Name, Region: p.Region, Class: class.Name, Node: choice.Node, Endpoint: choice.Endpoint, Port: p.Probe.MediaPort,
		URL: mediaURL(p, choice.Endpoint), UtilizationPercent: round1(choice.Utilization)}
	return respond(http.StatusOK, a, nil), nil
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
func (h *Handler) choose(ctx context.Context, p pool.Pool, class pool.Class) (Choice, error) {
	e := h.entry(p.Name)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := h.now()
	if e.tried.IsZero() || now.Sub(e.tried) >= Refresh {
		e.tried = now
		nodes, err := h.nodes.ListNodes(ctx, p.Name)
		e.err = err
		if err == nil {
			e.snap = NewSnapshot(p, nodes, now)
			e.forget(now.Add(-p.HeartbeatMaxAge()))
			e.snap.AddUnreported(e.sent)
		} else if e.snap != nil {
			h.log.WarnContext(ctx, "reading nodes failed; dispatching from the last snapshot while it is fresh", "pool", p.Name,
				"snapshotAgeMs", now.Sub(e.snap.At).Milliseconds(), "error", err.Error())
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

func (h *Handler) entry(name string) *cacheEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.cached[name]
	if !ok {
		e = &cacheEntry{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), sent: map[string][]time.Time{}}
		h.cached[name] = e
	}
	return e
}

// count writes the request's one log line, which is also its datapoint:
// SessionsDispatched and SessionsRefused per pool and class, and per pool,
// at one-second resolution: the controller reads SessionsRefused by the
// ten seconds as demand no node has seen, and a crowd is over in less
// than a minute.
func (h *Handler) count(ctx context.Context, p pool.Pool, class pool.Class, msg string, extra []any, dispatched, refused float64) {
	dims := []telemetry.Dimension{{Name: "Pool", Value: p.Name}, {Name: "Class", Value: class.Name}}
	if err := telemetry.EmitEvent(ctx, h.log, msg, extra, h.now(), dims, [][]string{{"Pool"}, {"Pool", "Class"}},
		telemetry.Metric{Name: MetricDispatched, Value: dispatched, Unit: telemetry.Count, HighResolution: true},
		telemetry.Metric{Name: MetricRefused, Value: refused, Unit: telemetry.Count, HighResolution: true},
	); err != nil {
		h.log.ErrorContext(ctx, "dispatch metrics not published", "pool", p.Name, "error", err.Error())
	}
}

// The dispatcher's metrics.
const (
	MetricDispatched = "SessionsDispatched"
	MetricRefused    = "SessionsRefused"
)

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
