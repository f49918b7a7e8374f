package fleet

import "testing"

func TestTransitionTable(t *testing.T) {
	cases := []struct {
		name     string
		from, to State
		allowed  bool
	}{
		{"a pending node starts provisioning", Pending, Provisioning, true},
		{"a provisioned node deploys", Provisioning, Deploying, true},
		{"a deployed node is probed", Deploying, Probing, true},
		{"a probed node takes traffic", Probing, Shifting, true},
		{"a shifted node becomes active", Shifting, Active, true},
		{"an active node drains", Active, Draining, true},
		{"a drained node terminates", Draining, Terminated, true},
		{"a cancelled drain returns the node to active", Draining, Active, true},
		{"a rolling-back node ends failed", RollingBack, Failed, true},
		{"a probed node launched for the warm pool is parked", Probing, Warm, true},
		{"a scale-out claims a warm node back to pending", Warm, Pending, true},
		{"a started warm node, deployed before it was parked, goes straight to probing", Provisioning, Probing, true},
		{"a stale warm node is retired", Warm, Terminated, true},
		{"a warm node cannot take traffic without being started and probed", Warm, Shifting, false},
		{"an active node is never parked", Active, Warm, false},
		{"a pending node cannot skip to active", Pending, Active, false},
		{"an active node cannot go back to probing", Active, Probing, false},
		{"a shifting node cannot be terminated without draining", Shifting, Terminated, false},
		{"a terminated node never comes back", Terminated, Active, false},
		{"a failed node never rolls back again", Failed, RollingBack, false},
		{"a node cannot stay in place through a transition", Active, Active, false},
		{"an unknown state has no moves", State("LIMBO"), Active, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanTransition(tc.from, tc.to); got != tc.allowed {
				t.Fatalf("CanTransition(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.allowed)
			}
		})
	}
}

func TestEveryNonTerminalStateCanRollBack(t *testing.T) {
	for _, s := range States() {
		if s.Terminal() || s == RollingBack {
			continue
		}
		if !CanTransition(s, RollingBack) {
			t.Errorf("%s cannot roll back", s)
		}
	}
	for _, s := range States() {
		if s.Terminal() && len(transitions[s]) != 0 {
			t.Errorf("terminal state %s has moves %v", s, transitions[s])
		}
		if !s.Known() {
			t.Errorf("%s is listed but not in the table", s)
		}
	}
}

func TestANodeOnItsWayIntoTheWarmPoolIsNotServingCapacity(t *testing.T) {
	cases := []struct {
		name    string
		node    Node
		serving bool
	}{
		{"a probing node launched to serve counts", Node{State: Probing, Goal: "serve"}, true},
		{"a node of an older record without a goal serves", Node{State: Active}, true},
		{"a probing node launched for the warm pool does not count", Node{State: Probing, Goal: "warm"}, false},
		{"a parked warm node does not count", Node{State: Warm, Goal: "warm"}, false},
		{"a warm node claimed back to pending counts", Node{State: Pending, Goal: "serve"}, true},
		{"a draining node does not count", Node{State: Draining}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.node.Serving(); got != tc.serving {
				t.Fatalf("Serving() = %v, want %v", got, tc.serving)
			}
		})
	}
}

func TestNodeIDsAreUniqueAndSortByCreation(t *testing.T) {
	prev := NewNodeID()
	for i := 0; i < 100; i++ {
		id := NewNodeID()
		if id <= prev {
			t.Fatalf("id %s does not sort after %s", id, prev)
		}
		prev = id
	}
}
