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
