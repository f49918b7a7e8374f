// Package lambdarouter is the front door of the local cloud: it serves the
// Lambda Invoke API by running the deployed function's real bootstrap in the
// local runtime, and passes every other AWS request to moto unchanged. moto
// is started with MOTO_PORT pointing here, so its Step Functions interpreter
// invokes Lambda tasks through this router too.
package lambdarouter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mediascale/mediascale/scripts/internal/lambdaruntime"
)

// Catalog resolves a function name or ARN to what the runtime must run.
type Catalog interface {
	Resolve(ctx context.Context, nameOrARN string) (lambdaruntime.Function, error)
}

// ErrUnknownFunction is wrapped by a Catalog for a function that is not
// deployed; the router answers 404 ResourceNotFoundException as Lambda does.
type ErrUnknownFunction struct{ Name string }

func (e ErrUnknownFunction) Error() string { return "Function not found: " + e.Name }

// Stats counts what the router ran, for replay summaries and benchmarks.
type Stats struct {
	Invocations map[string]int `json:"invocations"`
	Errors      map[string]int `json:"errors"`
	DurationMs  map[string]int `json:"durationMs"`
	BilledMs    map[string]int `json:"billedMs"`
	ColdStarts  map[string]int `json:"coldStarts"`
	InitMs      map[string]int `json:"initMs"`
}

// Router serves Lambda invocations and proxies everything else.
type Router struct {
	catalog Catalog
	runtime *lambdaruntime.Runtime
	proxy   *httputil.ReverseProxy
	log     *slog.Logger

	mu     sync.Mutex
	stats  Stats
	faults faults
	ship   Shipper
	urls   *urlFront
}

// Shipper takes a finished invocation's output where the Lambda service
// would put it: the function's log group, and the metrics of its embedded
// metric format lines.
type Shipper interface {
	Ship(ctx context.Context, region, function, requestID string, output []byte, at time.Time) (int, error)
}

// ShipTo sends every invocation's output to s, before the invocation's
// answer goes back, so a caller that sees the answer also finds its logs
// and metrics.
func (rt *Router) ShipTo(s Shipper) { rt.ship = s }

// New returns a router in front of the moto server at motoURL.
func New(motoURL *url.URL, catalog Catalog, runtime *lambdaruntime.Runtime, log *slog.Logger) *Router {
	proxy := httputil.NewSingleHostReverseProxy(motoURL)
	// The Host header is kept as the client sent it: moto reads S3 bucket
	// names and signatures against it.
	return &Router{catalog: catalog, runtime: runtime, proxy: proxy, log: log, stats: newStats()}
}

func newStats() Stats {
	return Stats{Invocations: map[string]int{}, Errors: map[string]int{}, DurationMs: map[string]int{},
		BilledMs: map[string]int{}, ColdStarts: map[string]int{}, InitMs: map[string]int{}}
}

const invokePrefix = "/2015-03-31/functions/"

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_localcloud/stats" {
		rt.serveStats(w, r)
		return
	}
	if r.URL.Path == "/_localcloud/faults" {
		rt.faults.serveFaults(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, URLPrefix) {
		rt.serveURL(w, r)
		return
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, invokePrefix) && strings.HasSuffix(r.URL.Path, "/invocations") {
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, invokePrefix), "/invocations")
		if unescaped, err := url.PathUnescape(name); err == nil {
			name = unescaped
		}
		rt.invoke(w, r, name)
		return
	}
	if fl, c, ok := rt.faults.match(r); ok {
		rt.log.Info("fault injected", "service", c.service, "target", c.target, "caller", c.caller, "method", r.Method, "path", r.URL.Path,
			"status", fl.Status, "code", fl.Code)
		fl.write(w, c)
		return
	}
	rt.proxy.ServeHTTP(w, r)
}

// serveStats returns the counters; DELETE resets them.
func (rt *Router) serveStats(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if r.Method == http.MethodDelete {
		rt.stats = newStats()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rt.stats)
}

// lambdaError writes an Invoke API error the way the Lambda service does.
func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}

func (rt *Router) invoke(w http.ResponseWriter, r *http.Request, name string) {
	payload, err := io.ReadAll(io.LimitReader(r.Body, 6*1024*1024+1))
	if err != nil {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", err.Error())
		return
	}
	if len(payload) > 6*1024*1024 {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	// Lambda refuses a payload that is not JSON before any function runs.
	if !json.Valid(payload) {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: the payload is not valid JSON")
		return
	}
	fn, err := rt.catalog.Resolve(r.Context(), name)
	if err != nil {
		var unknown ErrUnknownFunction
		if errors.As(err, &unknown) {
			lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", unknown.Error())
			return
		}
		lambdaError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	switch r.Header.Get("X-Amz-Invocation-Type") {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), fn.Timeout+time.Minute)
			defer cancel()
			_, _ = rt.run(ctx, fn, payload)
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	res, err := rt.run(r.Context(), fn, payload)
	if err != nil {
		lambdaError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Executed-Version", "$LATEST")
	h.Set("X-Amzn-Requestid", res.RequestID)
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	if r.Header.Get("X-Amz-Log-Type") == "Tail" {
		logs := res.Logs
		if len(logs) > 4096 {
			logs = logs[len(logs)-4096:]
		}
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(logs))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}

func (rt *Router) run(ctx context.Context, fn lambdaruntime.Function, payload []byte) (lambdaruntime.Result, error) {
	res, err := rt.runtime.Invoke(ctx, fn, payload)
	if err != nil {
		rt.log.Error("invocation failed to run", "function", fn.Name, "error", err.Error())
		return res, fmt.Errorf("running %s: %w", fn.Name, err)
	}
	rt.mu.Lock()
	rt.stats.Invocations[fn.Name]++
	rt.stats.DurationMs[fn.Name] += int(res.Duration.Milliseconds())
	rt.stats.BilledMs[fn.Name] += int((res.Duration + time.Millisecond - 1) / time.Millisecond)
	if res.FunctionError != "" {
		rt.stats.Errors[fn.Name]++
	}
	if res.InitDuration > 0 {
		rt.stats.ColdStarts[fn.Name]++
		rt.stats.InitMs[fn.Name] += int(res.InitDuration.Milliseconds())
	}
	rt.mu.Unlock()
	if rt.ship != nil {
		if _, err := rt.ship.Ship(ctx, fn.Region, fn.Name, res.RequestID, res.Logs, time.Now()); err != nil {
			rt.log.Error("invocation output not shipped", "function", fn.Name, "requestId", res.RequestID, "error", err.Error())
		}
	}
	rt.log.Info("invoked", "function", fn.Name, "requestId", res.RequestID,
		"durationMs", float64(res.Duration.Microseconds())/1000, "initMs", float64(res.InitDuration.Microseconds())/1000,
		"functionError", res.FunctionError, "errorType", res.ErrorType())
	return res, nil
}
