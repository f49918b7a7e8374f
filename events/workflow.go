package events

import "time"

// Directions of a scaling execution.
const (
	DirectionOut = "out"
	DirectionIn  = "in"
)

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
}

// Plan is the plan step's answer: the nodes to add or remove, and why.
type Plan struct {
	Pool      string     `json:"pool"`
	Direction string     `json:"direction"`
	Execution string     `json:"execution"`
	Current   int        `json:"current"`
	Desired   int        `json:"desired"`
	Nodes     []NodeTask `json:"nodes"`
	Reasons   []string   `json:"reasons"`
}
