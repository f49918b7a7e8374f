// Package healing checks every serving node on a schedule and takes a node
// that keeps failing out of service: all its traffic at once, its record
// marked unhealthy with the reason, its replacement owed to the pool
// (the controller starts it through the normal scale-out), its remaining
// sessions drained until its drain timeout, then its instance terminated.
// A pool replaces at most healing.maxReplacementsPerHour nodes an hour, so
// a fault that every new node shares is not replaced in a loop.
package healing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/traffic"
)

// Store is the part of the node store the checker uses.
type Store interface {
	ListNodes(ctx context.Context, pool string) ([]fleet.Node, error)
	SetHealthFailures(ctx context.Context, pool, id string, failures int) (bool, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
}

// Prober checks a node's health endpoint and media port.
type Prober interface {
	Probe(ctx context.Context, ep health.Endpoint, spec pool.Probe) health.Measurement
}

// Sessions counts the sessions a node still carries.
type Sessions interface {
	Count(ctx context.Context, ep health.Endpoint) (int, error)
}

// Instances terminates a node's instance.
type Instances interface {
	Terminate(ctx context.Context, instanceID string) error
}

// Records reads and reweighs a Route53 pool's records.
type Records interface {
	Current(ctx context.Context, p pool.Pool) (map[string]traffic.Record, error)
	Reweigh(ctx context.Context, p pool.Pool, rec traffic.Record, weight int) (changed bool, err error)
}

// TargetHealth reads how a load-balancer pool's target groups see its
// nodes, by address.
type TargetHealth interface {
	Health(ctx context.Context, p pool.Pool) (map[string]traffic.TargetState, error)
}

// Handler is the health checker's Lambda handler. After its checks it
// also sets the load-aware weights of Route53 pools (traffic.Balance): the
// same minute, the same reading of the nodes.
type Handler struct {
	pools     pool.File
	store     Store
	prober    Prober
	sessions  Sessions
	instances Instances
	weights   func(mode string) (traffic.Weights, error)
	records   Records
	targets   TargetHealth
	now       func() time.Time
	log       *slog.Logger
}

// NewHandler returns the health checker.
func NewHandler(pools pool.File, store Store, prober Prober, sessions Sessions, instances Instances,
	weights func(mode string) (traffic.Weights, error), records Records, targets TargetHealth, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{pools: pools, store: store, prober: prober, sessions: sessions, instances: instances, weights: weights, records: records,
		targets: targets, now: now, log: log}
}

// Report is one run's outcome.
type Report struct {
	Checked    int      `json:"checked"`
	Failing    []string `json:"failing,omitempty"`
	TakenOut   []string `json:"takenOut,omitempty"`
	Terminated []string `json:"terminated,omitempty"`
	// Reweighed holds the record weights moved by headroom, by node.
	Reweighed map[string]int `json:"reweighed,omitempty"`
	// TrafficOff names the nodes that must carry no traffic and still
	// had some, which this run took away (Strays).
	TrafficOff []string `json:"trafficOff,omitempty"`
	Errors     []string `json:"errors,omitempty"`
}

// LogAttrs puts the report in the invocation's log line.
func (r Report) LogAttrs() []any {
	return []any{"checked", r.Checked, "failing", r.Failing, "takenOut", r.TakenOut, "terminated", r.Terminated, "reweighed", r.Reweighed,
		"trafficOff", r.TrafficOff, "errors", len(r.Errors)}
}

// Handle is the Lambda entry point; the scheduled event's content does
// not matter.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Report, error) {
	return invocation.Handler("heal", h.log, h.now, func(ctx context.Context, _ json.RawMessage) (Report, error) {
		return h.run(ctx)
	})
}

// run checks every pool; one pool's failure does not stop the others, and
// the run fails only when no pool could be read.
func (h *Handler) run(ctx context.Context) (Report, error) {
	var r Report
	failed := 0
	for _, p := range h.pools.Pools {
		if err := h.pool(ctx, p, &r); err != nil {
			failed++
			r.Errors = append(r.Errors, err.Error())
			h.log.ErrorContext(ctx, "health check of a pool failed", "pool", p.Name, "error", err.Error())
		}
	}
	if failed == len(h.pools.Pools) && failed > 0 {
		return r, errors.New(strings.Join(r.Errors, "; "))
	}
	return r, nil
}

func (h *Handler) pool(ctx context.Context, p pool.Pool, r *Report) error {
	nodes, err := h.store.ListNodes(ctx, p.Name)
	if err != nil {
		return fmt.Errorf("reading the nodes of pool %s: %w", p.Name, err)
	}
	now := h.now()
	replaced := Replacements(nodes, now)
	// A load-balancer pool's nodes are also judged by the load
	// balancer's own health checks, read once a run. When they cannot be
	// read the heartbeat and the probe still judge.
	var targets map[string]traffic.TargetState
	if p.Traffic.LoadBalancer != nil && (p.Traffic.Mode == pool.TrafficALB || p.Traffic.Mode == pool.TrafficNLB) {
		if targets, err = h.targets.Health(ctx, p); err != nil {
			r.Errors = append(r.Errors, err.Error())
			h.log.ErrorContext(ctx, "target health not read; the heartbeat and the probe still judge", "pool", p.Name, "error", err.Error())
		}
	}
	for _, n := range nodes {
		var err error
		switch {
		case n.State == fleet.Active && n.Goal != events.GoalWarm:
			r.Checked++
			verdict := h.check(ctx, p, n, targets[n.Endpoint], now)
			if verdict == "" {
				if n.HealthFailures > 0 {
					_, err = h.store.SetHealthFailures(ctx, p.Name, n.ID, 0)
				}
				break
			}
			r.Failing = append(r.Failing, n.ID)
			failures := n.HealthFailures + 1
			if failures < p.Healer().Failures {
				h.log.WarnContext(ctx, "node failed a health check", "pool", p.Name, "node", n.ID, "failures", failures, "of", p.Healer().Failures, "reason", verdict)
				_, err = h.store.SetHealthFailures(ctx, p.Name, n.ID, failures)
				break
			}
			replace := replaced < p.Healer().MaxReplacementsPerHour
			if err = h.takeOut(ctx, p, n, verdict, failures, replace, replaced, now); err == nil {
				r.TakenOut = append(r.TakenOut, n.ID)
				if replace {
					replaced++
				}
			}
		case n.State == fleet.Draining && n.Execution == fleet.HealerOwner:
			var gone bool
			if gone, err = h.drain(ctx, p, n, now); gone {
				r.Terminated = append(r.Terminated, n.ID)
			}
		}
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			h.log.ErrorContext(ctx, "health action failed; the next run tries again", "pool", p.Name, "node", n.ID, "error", err.Error())
		}
	}
	if err := h.sweep(ctx, p, nodes, targets, now, r); err != nil {
		r.Errors = append(r.Errors, err.Error())
		h.log.ErrorContext(ctx, "traffic of nodes out of service not checked; the next run tries again", "pool", p.Name, "error", err.Error())
	}
	if p.Traffic.Mode == pool.TrafficRoute53 && p.Traffic.LoadAwareWeights() {
		// The nodes read before this run's take-outs: those are no
		// longer serving, whatever the read says.
		serving := slices.DeleteFunc(slices.Clone(nodes), func(n fleet.Node) bool { return slices.Contains(r.TakenOut, n.ID) })
		if err := h.balance(ctx, p, serving, now, r); err != nil {
			r.Errors = append(r.Errors, err.Error())
			h.log.ErrorContext(ctx, "load-aware weights not set; the next run tries again", "pool", p.Name, "error", err.Error())
		}
	}
	return nil
}

// strayGrace is how long past its drain deadline a DRAINING node is still
// its drain's to finish (a last count, the sessions closed, the instance
// terminated): until then its drain, which may yet restore it, owns its
// traffic.
const strayGrace = 5 * time.Minute

// Strays are the nodes that must carry no traffic: rolled back, failed or
// terminated, or draining past their deadline and strayGrace. A workflow
// takes their traffic away itself, but one whose traffic calls failed past
// every retry leaves it, and new sessions would go on reaching them.
func Strays(nodes []fleet.Node, now time.Time) []fleet.Node {
	var out []fleet.Node
	for _, n := range nodes {
		switch {
		case n.State == fleet.RollingBack, n.State.Terminal():
		case n.State == fleet.Draining && !n.Deadline.IsZero() && now.After(n.Deadline.Add(strayGrace)):
		default:
			continue
		}
		out = append(out, n)
	}
	return out
}

// sweep takes the traffic off every stray that still has some: a Route53
// record of weight above 0, or a target registered in either of a load
// balancer's groups (taking it out also sets the canary weight back). The
// records are read only when the pool has strays; a load balancer's
// targets are the run's own reading.
func (h *Handler) sweep(ctx context.Context, p pool.Pool, nodes []fleet.Node, targets map[string]traffic.TargetState, now time.Time, r *Report) error {
	strays := Strays(nodes, now)
	if len(strays) == 0 {
		return nil
	}
	routed := func(fleet.Node) bool { return false }
	switch p.Traffic.Mode {
	case pool.TrafficRoute53:
		recs, err := h.records.Current(ctx, p)
		if err != nil {
			return fmt.Errorf("reading the records of pool %s: %w", p.Name, err)
		}
		routed = func(n fleet.Node) bool { return recs[n.ID].Weight > 0 }
	case pool.TrafficALB, pool.TrafficNLB:
		if targets == nil {
			return fmt.Errorf("pool %s: the load balancer's targets were not read", p.Name)
		}
		routed = func(n fleet.Node) bool { _, ok := targets[n.Endpoint]; return n.Endpoint != "" && ok }
	}
	for _, n := range strays {
		if !routed(n) {
			continue
		}
		if err := h.removeTraffic(ctx, p, n); err != nil {
			return err
		}
		r.TrafficOff = append(r.TrafficOff, n.ID)
		h.log.WarnContext(ctx, "traffic taken off a node out of service", "pool", p.Name, "node", n.ID, "state", n.State, "reason", n.Reason)
	}
	return nil
}

// balance moves the pool's record weights toward each ACTIVE node's
// headroom. Each write is conditional on the record as read: a record a
// drain, a shift step or this run's own take-out changed meanwhile is
// left alone.
func (h *Handler) balance(ctx context.Context, p pool.Pool, nodes []fleet.Node, now time.Time, r *Report) error {
	recs, err := h.records.Current(ctx, p)
	if err != nil {
		return err
	}
	current := make(map[string]int, len(recs))
	for id, rec := range recs {
		current[id] = rec.Weight
	}
	for id, w := range traffic.Balance(p, nodes, current, now) {
		changed, err := h.records.Reweigh(ctx, p, recs[id], w)
		if err != nil {
			return err
		}
		if changed {
			if r.Reweighed == nil {
				r.Reweighed = map[string]int{}
			}
			r.Reweighed[id] = w
		}
	}
	return nil
}

// Replacements counts the nodes a pool took out as unhealthy and replaced
// (or will) within the last hour.
func Replacements(nodes []fleet.Node, now time.Time) int {
	n := 0
	for _, x := range nodes {
		if (x.Goal == events.GoalReplace || x.Goal == events.GoalReplaced) && now.Sub(x.UnhealthyAt) < time.Hour {
			n++
		}
	}
	return n
}

// check runs the checks on a serving node and says what failed, or ""
// when it is healthy: its agent's heartbeat must be fresh and healthy, the
// active probe (health endpoint, then the media handshake) must pass, and
// a load balancer, where it has one, must not find it unhealthy (target).
func (h *Handler) check(ctx context.Context, p pool.Pool, n fleet.Node, target traffic.TargetState, now time.Time) string {
	var failed []string
	switch hb := n.Heartbeat; {
	case hb == nil:
		failed = append(failed, "its agent never reported")
	case !hb.Fresh(now, p.HeartbeatMaxAge()):
		failed = append(failed, fmt.Sprintf("no heartbeat for %s (its agent reports every %s)", now.Sub(hb.At).Round(time.Second), p.AgentInterval()))
	case !hb.Healthy:
		failed = append(failed, "its agent reports: "+hb.Reason)
	}
	if target.Unhealthy() {
		failed = append(failed, fmt.Sprintf("its load balancer finds it unhealthy in %s (%s)", target.Group, target.Reason))
	}
	ep, err := health.Resolve(n.ID, n.PrivateIP, p)
	if err != nil {
		return strings.Join(append(failed, "no address to probe: "+err.Error()), "; ")
	}
	// A serving node is allowed the probe's whole timeout: the latency
	// limit is the bar a new node must clear before it takes traffic,
	// and one slow answer from a busy node is no reason to drop its
	// users.
	spec := p.Probe
	spec.MaxLatency = spec.Timeout
	if m := h.prober.Probe(ctx, ep, spec); !m.Healthy {
		failed = append(failed, "probe: "+m.Reason)
	}
	return strings.Join(failed, "; ")
}

// takeOut claims the node for the checker (ACTIVE -> DRAINING, weight 0,
// the reason on the record) and then takes its traffic away. The claim
// comes first, as the drain's does: a failed claim leaves the node
// serving untouched, and a node that lost its traffic is always one the
// next run, the controller and the reconciler know to be leaving.
func (h *Handler) takeOut(ctx context.Context, p pool.Pool, n fleet.Node, verdict string, failures int, replace bool, replaced int, now time.Time) error {
	reason := fmt.Sprintf("unhealthy after %d failed health checks: %s", failures, verdict)
	goal := events.GoalReplace
	if !replace {
		goal = ""
		reason += fmt.Sprintf("; not replaced: the pool replaced %d nodes in the last hour, its bound", replaced)
	}
	zero := 0
	claimed, err := h.store.Transition(ctx, p.Name, n.ID, fleet.Active, n.Version, fleet.Draining, fleet.Change{
		Weight: &zero, Execution: fleet.HealerOwner, Goal: goal, Reason: reason, UnhealthyAt: now,
		Deadline: now.Add(invocation.DrainTimeout(p.Drain.Timeout.D())),
	})
	if err != nil {
		return fmt.Errorf("taking node %s out: %w", n.ID, err)
	}
	h.log.WarnContext(ctx, "node taken out of service", "pool", p.Name, "node", n.ID, "reason", reason, "replace", replace)
	return h.removeTraffic(ctx, p, claimed)
}

func (h *Handler) removeTraffic(ctx context.Context, p pool.Pool, n fleet.Node) error {
	w, err := h.weights(p.Traffic.Mode)
	if err != nil {
		return err
	}
	if err := w.Remove(ctx, p, n.ID, n.Endpoint); err != nil {
		return fmt.Errorf("taking traffic off node %s: %w", n.ID, err)
	}
	return nil
}

// drain finishes a node the checker took out: its traffic is taken away
// again (a no-op once gone, the retry when an earlier run failed), and
// the node is terminated once its sessions have ended, its media server
// no longer answers (no session is left to wait for), or its drain
// timeout has passed.
func (h *Handler) drain(ctx context.Context, p pool.Pool, n fleet.Node, now time.Time) (gone bool, err error) {
	if err := h.removeTraffic(ctx, p, n); err != nil {
		return false, err
	}
	why := ""
	ep, rerr := health.Resolve(n.ID, n.PrivateIP, p)
	count, cerr := 0, rerr
	if rerr == nil {
		count, cerr = h.sessions.Count(ctx, ep)
	}
	switch {
	case cerr != nil:
		why = "its media server does not answer, so no session is left to wait for"
	case count <= p.Drain.ConnectionThreshold:
		why = fmt.Sprintf("drained (%d sessions left)", count)
	case now.After(n.Deadline):
		why = fmt.Sprintf("drain timeout passed with %d sessions left", count)
	default:
		return false, nil
	}
	if n.InstanceID != "" {
		if err := h.instances.Terminate(ctx, n.InstanceID); err != nil {
			return false, fmt.Errorf("terminating unhealthy node %s: %w", n.ID, err)
		}
	}
	if _, err := h.store.Transition(ctx, p.Name, n.ID, fleet.Draining, n.Version, fleet.Terminated, fleet.Change{Reason: n.Reason + "; terminated: " + why}); err != nil {
		return false, fmt.Errorf("marking unhealthy node %s terminated: %w", n.ID, err)
	}
	h.log.InfoContext(ctx, "unhealthy node terminated", "pool", p.Name, "node", n.ID, "reason", why)
	return true, nil
}
