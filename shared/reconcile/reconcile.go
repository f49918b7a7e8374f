// Package reconcile keeps the node table true to what runs: it compares
// each pool's tagged EC2 instances with the table and repairs the drift
// crashes and manual changes leave behind.
package reconcile

import (
	"fmt"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
)

// Kinds of drift.
const (
	Orphan    = "OrphanInstance"   // a tagged instance the table does not know
	Vanished  = "VanishedInstance" // a live record whose instance is gone
	StaleLock = "StaleLock"        // a lock whose execution has ended
	StuckNode = "StuckNode"        // a node in a transitional state nobody is moving
	// AbandonedDrain is a node DRAINING for a scale-in that has ended,
	// before its drain deadline: it drains on, never cut early.
	AbandonedDrain = "AbandonedDrain"
	noAction       = "report"
	actDrainOn     = "drain-on"
	actTerminate   = "terminate"
	actFail        = "mark-failed"
	actTerminated  = "mark-terminated"
	actRelease     = "release"
	actRollBack    = "roll-back"
)

// Instance is a tagged EC2 instance as the reconciler sees it.
type Instance struct {
	ID       string
	Node     string // the mediascale:node tag
	State    string // pending, running, stopping, stopped, shutting-down, terminated
	Launched time.Time
}

// Finding is one piece of drift and what to do about it.
type Finding struct {
	Kind     string `json:"kind"`
	Node     string `json:"node,omitempty"`
	Instance string `json:"instance,omitempty"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
}

// Input is everything the reconciler knows about one pool.
type Input struct {
	Now       time.Time
	Nodes     []fleet.Node
	Instances []Instance
	Lock      *fleet.Lease
	// Running reports whether an execution is still running.
	Running func(execution string) bool
	// OrphanGrace is how long a tagged instance may stay unknown: a launch
	// records its instance a moment after RunInstances returns.
	OrphanGrace time.Duration
	// StuckAfter is how long a node may sit in a transitional state
	// without a deadline of its own.
	StuckAfter time.Duration
}

// Find compares the table with the instances and returns the drift, each
// with its action. It is pure: the handler carries the actions out.
func Find(in Input) []Finding {
	var out []Finding
	byInstance := map[string]fleet.Node{}
	byNode := map[string]fleet.Node{}
	for _, n := range in.Nodes {
		byNode[n.ID] = n
		if n.InstanceID != "" {
			byInstance[n.InstanceID] = n
		}
	}
	live := map[string]Instance{}
	for _, i := range in.Instances {
		if i.State == "terminated" || i.State == "shutting-down" {
			continue
		}
		live[i.ID] = i
		n, known := byInstance[i.ID]
		if !known {
			// A launch that crashed before recording its instance still
			// tagged it with the node: the record knows the node.
			if rec, ok := byNode[i.Node]; ok && !rec.State.Terminal() && rec.InstanceID == "" {
				continue
			}
		}
		if known && !n.State.Terminal() {
			continue
		}
		f := Finding{Kind: Orphan, Node: i.Node, Instance: i.ID, Action: noAction}
		age := in.Now.Sub(i.Launched)
		switch {
		case known:
			f.Reason = fmt.Sprintf("instance still %s but its node is %s", i.State, n.State)
			f.Action = actTerminate
		case age < in.OrphanGrace:
			f.Reason = fmt.Sprintf("tagged instance unknown to the table for %s (grace %s)", age.Round(time.Second), in.OrphanGrace)
		default:
			f.Reason = fmt.Sprintf("tagged instance unknown to the table for %s, past the %s grace", age.Round(time.Second), in.OrphanGrace)
			f.Action = actTerminate
		}
		out = append(out, f)
	}
	for _, n := range in.Nodes {
		if n.State.Terminal() {
			continue
		}
		healing := n.Execution == fleet.HealerOwner
		busy := n.Execution != "" && !healing && in.Running(n.Execution)
		if n.InstanceID != "" {
			if _, ok := live[n.InstanceID]; !ok && !busy {
				f := Finding{Kind: Vanished, Node: n.ID, Instance: n.InstanceID, Action: actFail,
					Reason: fmt.Sprintf("node is %s but instance %s is gone", n.State, n.InstanceID)}
				if n.State == fleet.Draining {
					f.Action, f.Reason = actTerminated, f.Reason+": it was leaving anyway"
				}
				out = append(out, f)
				continue
			}
		}
		if !n.State.Transitional() || busy {
			continue
		}
		// A drain whose scale-in ended (stopped, or failed past its
		// retries and its restore) is not cut: the node keeps its live
		// sessions until the deadline its drain recorded, with its
		// traffic off meanwhile, and is terminated only after it.
		if n.State == fleet.Draining && n.Execution != "" && !healing && !n.Deadline.IsZero() && !in.Now.After(n.Deadline) {
			out = append(out, Finding{Kind: AbandonedDrain, Node: n.ID, Instance: n.InstanceID, Action: actDrainOn,
				Reason: fmt.Sprintf("DRAINING for execution %q, which has ended; it drains on until its deadline %s: traffic off, its sessions left to end",
					n.Execution, n.Deadline.Format(time.RFC3339))})
			continue
		}
		// A node whose execution has ended has nobody left to move it:
		// it is finished now, not after a deadline meant for a step
		// that is still running. Only a node without an owner waits.
		if n.Execution != "" && !healing {
			out = append(out, Finding{Kind: StuckNode, Node: n.ID, Instance: n.InstanceID, Action: actRollBack,
				Reason: fmt.Sprintf("%s since %s, and execution %q that owns it has ended", n.State, n.UpdatedAt.Format(time.RFC3339), n.Execution)})
			continue
		}
		deadline := n.Deadline
		switch {
		case healing:
			// The health checker drains the nodes it took out on its
			// own schedule, to their drain deadline: it gets the first
			// go, the reconciler the one after.
			deadline = n.Deadline.Add(in.StuckAfter)
		case deadline.IsZero() || n.State == fleet.Shifting || n.State == fleet.Probing || n.State == fleet.Pending:
			deadline = n.UpdatedAt.Add(in.StuckAfter)
		}
		if in.Now.After(deadline) {
			out = append(out, Finding{Kind: StuckNode, Node: n.ID, Instance: n.InstanceID, Action: actRollBack,
				Reason: fmt.Sprintf("%s since %s, past its deadline, and no execution owns it", n.State, n.UpdatedAt.Format(time.RFC3339))})
		}
	}
	if in.Lock != nil && !in.Running(in.Lock.Owner) {
		out = append(out, Finding{Kind: StaleLock, Action: actRelease,
			Reason: fmt.Sprintf("lock held by %s, which is not running", in.Lock.Owner)})
	}
	return out
}
