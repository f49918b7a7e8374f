package events

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Directions of a scaling execution.
const (
	DirectionOut = "out"
	DirectionIn  = "in"
)

// Goals of a node in a scale-out: what the workflow takes it to.
const (
	// GoalServe takes a node into service (ACTIVE, with traffic).
	GoalServe = "serve"
	// GoalWarm launches, deploys and probes a node, then stops it and
	// parks it in the pool's warm pool (WARM, no traffic).
	GoalWarm = "warm"
	// GoalRetire marks a warm node the plan terminated because it was
	// built from an older revision of its pool, or the warm pool has too
	// many.
	GoalRetire = "retire"
	// GoalReplace marks a node taken out of service as unhealthy whose
	// replacement the controller still owes the pool; GoalReplaced one
	// whose replacement a scale-out has been started for.
	GoalReplace  = "replace"
	GoalReplaced = "replaced"
)

// PersistentRetries is how many times the steps that must finish
// (Rollback, Restore, Release) are retried after their first attempt.
// Release's last attempt writes its summary whatever the table says.
const PersistentRetries = 8

// RollbackTrafficOff is the action of a rollback's first step: only the
// failed node's traffic off, retried longer than any other step. A
// rollback request without an action does all of it.
const RollbackTrafficOff = "trafficOff"

// ScaleRequest is the input of a scaling execution, written by the trigger
// (or an operator) and read by the plan step.
type ScaleRequest struct {
	Pool        string    `json:"pool"`
	Direction   string    `json:"direction"`
	Execution   string    `json:"execution"`
	Alarm       string    `json:"alarm,omitempty"`
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requestedAt"`
	// Count asks for an exact number of nodes (a manual request); zero
	// means the pool's configured step.
	Count int `json:"count,omitempty"`
	// Desired is the controller's capacity for a scale-out: the plan adds
	// the difference between it and what is serving or in flight when the
	// plan runs, so a decision never double-counts nodes another
	// scale-out planned in between.
	Desired int `json:"desired,omitempty"`
	// WarmOnly asks for warm-pool upkeep alone: fill it, retire stale
	// warm nodes, add no serving capacity.
	WarmOnly bool `json:"warmOnly,omitempty"`
	// WarmWant is the warm pool the controller wants kept (none: the
	// pool's configured warmPool): more than configured ahead of a
	// forecast or announced rise.
	WarmWant int `json:"warmWant,omitempty"`
	// DryRun plans and reports without changing anything. Always present,
	// so the state machine can branch on it.
	DryRun bool `json:"dryRun"`
}

// NodeTask is one node's item in the workflow's Map state: everything the
// per-node steps need, so no step has to re-plan.
type NodeTask struct {
	Pool          string   `json:"pool"`
	Node          string   `json:"node"`
	Execution     string   `json:"execution"`
	AZ            string   `json:"az"`
	Subnet        string   `json:"subnet"`
	InstanceTypes []string `json:"instanceTypes"`
	// Warm marks a stopped, already deployed warm-pool instance that is
	// started instead of launched.
	Warm       bool   `json:"warm,omitempty"`
	InstanceID string `json:"instanceId,omitempty"`
	// Goal is GoalServe or GoalWarm. Always present, so the state machine
	// can branch on it.
	Goal string `json:"goal"`
}

// LogAttrs names the node in an invocation's log line.
func (t NodeTask) LogAttrs() []any {
	return []any{"pool", t.Pool, "node", t.Node, "execution", t.Execution}
}

// NodeAction is the input of a per-node step that does one of several
// things to its node (launch, then check; start a drain, then poll...).
type NodeAction struct {
	Action string   `json:"action"`
	Task   NodeTask `json:"task"`
}

// LogAttrs names the action and the node.
func (a NodeAction) LogAttrs() []any {
	return append([]any{"action", a.Action}, a.Task.LogAttrs()...)
}

// Plan is the plan step's answer: the nodes to add or remove, and why.
type Plan struct {
	DryRun    bool       `json:"dryRun"`
	Pool      string     `json:"pool"`
	Direction string     `json:"direction"`
	Execution string     `json:"execution"`
	Current   int        `json:"current"`
	Desired   int        `json:"desired"`
	Nodes     []NodeTask `json:"nodes"`
	// Retire lists the warm nodes the plan step itself terminates (stale
	// or surplus); they never enter the per-node workflow.
	Retire  []NodeTask `json:"retire,omitempty"`
	Reasons []string   `json:"reasons"`
}

// Failure is what a Catch puts in the state: the error name and, for a
// Lambda error, its JSON payload as the cause.
type Failure struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Reason is a one-line account of the failure for the node record.
func (f Failure) Reason() string {
	var payload struct {
		Message string `json:"errorMessage"`
	}
	msg := f.Cause
	if json.Unmarshal([]byte(f.Cause), &payload) == nil && payload.Message != "" {
		msg = payload.Message
	}
	if len(msg) > 900 {
		// Cut on a character boundary: the reason is stored as text.
		cut := 900
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return f.Error + ": " + msg
}

// LogAttrs names the request in a log line.
func (r ScaleRequest) LogAttrs() []any {
	return []any{"pool", r.Pool, "execution", r.Execution, "direction", r.Direction, "count", r.Count}
}

// LogAttrs summarises the plan in a log line.
func (p Plan) LogAttrs() []any {
	return []any{"current", p.Current, "desired", p.Desired, "planned", len(p.Nodes), "reasons", p.Reasons}
}
