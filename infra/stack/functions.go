package stack

import "strings"

// functionSpec describes one Lambda: its folder under functions/ and
// build/, its limits, and the node-table actions it calls. Nothing else in
// the stack grants a function anything.
type functionSpec struct {
	Name           string
	Description    string
	MemoryMB       float64
	TimeoutSeconds float64
	TableActions   []string
	// InVpc runs the function in the pools' VPC, for functions that talk
	// to the nodes themselves.
	InVpc bool
}

// specNamed returns the spec of a function by name.
func specNamed(name string) functionSpec {
	for _, s := range functionSpecs {
		if s.Name == name {
			return s
		}
	}
	panic("no function spec named " + name)
}

// functionSpecs lists every function of the stack. Timeouts are short:
// every step does one small piece of work and waiting happens in Wait
// states, not in functions.
var functionSpecs = []functionSpec{
	{
		Name: "trigger", Description: "Runs the controller on alarms, the schedule, pressure loops and operator requests, and starts scaling executions",
		// A schedule tick decides every pool in turn: a few table reads
		// and one DescribeAlarms each.
		MemoryMB: 256, TimeoutSeconds: 30,
		// PutItem: dedupe marks, the pool lock, drain cancels, the load
		// window. GetItem: cooldown marks, pool status, the lock's owner,
		// the window. Query: the pool's nodes. UpdateItem: the scale-out
		// cooldown mark and the pressure loop's lease. DeleteItem: giving
		// the lock back after a failed start, ending a pressure loop.
		TableActions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"},
	},
	{
		Name: "plan", Description: "Plans which nodes a scale-out adds and records them",
		MemoryMB: 256, TimeoutSeconds: 15,
		// DeleteItem: a scale-out's plan hands the pool lock back.
		TableActions: []string{"dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
	},
	{
		Name: "provision", Description: "Launches or starts a node's instance and reports when it runs",
		MemoryMB: 256, TimeoutSeconds: 30,
		TableActions: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"},
	},
	{
		Name: "deploy", Description: "Deploys the media server on a node through SSM Run Command",
		MemoryMB: 256, TimeoutSeconds: 15,
		TableActions: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"},
	},
	{
		Name: "probe", Description: "Probes a node's health endpoint and media port",
		MemoryMB: 256, TimeoutSeconds: 15,
		TableActions: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"},
		InVpc:        true,
	},
	{
		Name: "shift", Description: "Moves traffic onto a node in guarded steps",
		MemoryMB: 256, TimeoutSeconds: 15,
		// Query: the pool's nodes, for each canary node's share of a
		// load balancer's canary group.
		TableActions: []string{"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"},
	},
	{
		Name: "rollback", Description: "Takes a failed node out: traffic off, instance terminated, record FAILED",
		MemoryMB: 256, TimeoutSeconds: 30,
		// Query: the pool's nodes, for each canary node's share of a
		// load balancer's canary group.
		TableActions: []string{"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"},
	},
	{
		Name: "drain", Description: "Drains a node: traffic off, new sessions refused, live sessions waited for, then terminated",
		MemoryMB: 256, TimeoutSeconds: 30,
		// Query: the pool's nodes, for each canary node's share of a
		// load balancer's canary group.
		TableActions: []string{"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"},
		// The drain counts and closes sessions on the node's stats port.
		InVpc: true,
	},
	{
		Name: "reconcile", Description: "Finds and repairs drift between the node table and the instances that run",
		MemoryMB: 256, TimeoutSeconds: 120,
		TableActions: []string{"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
	},
	{
		Name: "forecast", Description: "Forecasts each pool's load from its own history, for the controller's floor",
		// Two GetMetricData reads and one PutItem per pool.
		MemoryMB: 256, TimeoutSeconds: 60,
		TableActions: []string{"dynamodb:PutItem"},
	},
	{
		Name: "heal", Description: "Checks every serving node each minute and replaces the ones that keep failing",
		// A probe of every serving node (2 s timeout each, a pool's
		// nodes one after another) fits well inside a minute.
		MemoryMB: 256, TimeoutSeconds: 50,
		// Query: the pools' nodes. UpdateItem: failure counts and the
		// transitions of the nodes it takes out and terminates.
		TableActions: []string{"dynamodb:Query", "dynamodb:UpdateItem"},
		// It probes the nodes and counts their sessions.
		InVpc: true,
	},
	{
		Name: "dispatch", Description: "Answers which node a new session goes to, or refuses it by class when the pool is full",
		// Sessions arrive in crowds: more memory is more CPU for the
		// snapshot of a large pool, read once a second per pool.
		MemoryMB: 512, TimeoutSeconds: 5,
		TableActions: []string{"dynamodb:Query"},
	},
	{
		Name: "release", Description: "Releases the pool lock, starts the cooldown and summarises the execution",
		MemoryMB: 256, TimeoutSeconds: 15,
		// GetItem: whether a scale-in's drains were cancelled.
		TableActions: []string{"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
	},
}

// FunctionNames lists the functions the stack deploys, for the build and
// for tests.
func FunctionNames() []string {
	names := make([]string, len(functionSpecs))
	for i, s := range functionSpecs {
		names[i] = s.Name
	}
	return names
}

// LogicalID is the CloudFormation logical id prefix of the function, e.g.
// "TriggerFunction".
func (f functionSpec) LogicalID() string { return pascal(f.Name) + "Function" }

// pascal turns a dashed name such as live-rtmp-use1 into LiveRtmpUse1, for
// logical ids.
func pascal(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
