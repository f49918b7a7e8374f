// Package dispatch chooses the node for one new session: among the pool's
// serving nodes whose agents report fresh and healthy, the one with the
// most headroom across every metric the pool scales on, with randomness
// among near-equals so a burst does not pile onto one node, and a refusal
// by class when no node is under that class's admission ceiling.
//
// Snapshot and Choose are the decision; Handler is the entry dispatcher's
// HTTP front (a Lambda function URL), which reads each pool's nodes at
// most once a second and hands out sessions from the snapshot between.
package dispatch

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// NearEqual is how close in headroom (a share of a node's target) two
// nodes must be for the choice between them to be random.
const NearEqual = 0.05

// Choice is the node a session goes to.
type Choice struct {
	Node     string
	Endpoint string
	// Utilization is the node's busiest metric in percent of its
	// scale-out threshold, before this session.
	Utilization float64
}

// Refusal says why a session of a class was refused.
type Refusal struct {
	Class  string
	Reason string
}

func (r *Refusal) Error() string { return fmt.Sprintf("class %s refused: %s", r.Class, r.Reason) }

type candidate struct {
	id, endpoint string
	load         fleet.Load
	// scale is the share of its target the node may carry: 1 for an
	// ACTIVE node, its step's weight for one still shifting in.
	scale float64
	util  float64
	// reported is when the node's agent measured its load.
	reported time.Time
}

// Snapshot is a pool's nodes as read at one moment, kept for the many
// sessions until the next read. Each session it hands out is added to its
// node's load, so a burst between two reads spreads as the load would.
type Snapshot struct {
	mu      sync.Mutex
	pool    pool.Pool
	perConn fleet.Load
	nodes   []candidate
	// order holds the indexes of nodes, most headroom first.
	order []int
	At    time.Time
}

// NewSnapshot keeps the nodes that may take a session: serving (ACTIVE, or
// SHIFTING at its step's weight), with a fresh and healthy heartbeat.
func NewSnapshot(p pool.Pool, nodes []fleet.Node, now time.Time) *Snapshot {
	s := &Snapshot{pool: p, At: now}
	maxAge := p.HeartbeatMaxAge()
	var conns, cpu, bw float64
	for _, n := range nodes {
		hb := n.Heartbeat
		if !n.Serving() || !hb.Fresh(now, maxAge) || !hb.Healthy || n.Endpoint == "" {
			continue
		}
		scale := 1.0
		if n.State == fleet.Shifting {
			scale = float64(n.Weight) / 100
		}
		if n.State != fleet.Active && n.State != fleet.Shifting || scale <= 0 {
			continue
		}
		s.nodes = append(s.nodes, candidate{id: n.ID, endpoint: n.Endpoint, load: hb.Load, scale: scale, reported: hb.At})
		conns, cpu, bw = conns+hb.Load.Connections, cpu+hb.Load.CPUPercent, bw+hb.Load.BandwidthMbps
	}
	// One more session adds the pool's average cost of a session to its
	// node: its CPU and bandwidth per connection, as the agents report.
	if conns > 0 {
		s.perConn = fleet.Load{Connections: 1, CPUPercent: cpu / conns, BandwidthMbps: bw / conns}
	} else {
		s.perConn = fleet.Load{Connections: 1}
	}
	s.sort()
	return s
}

// sort computes every node's utilization and orders them by it.
func (s *Snapshot) sort() {
	for i := range s.nodes {
		s.nodes[i].util = s.utilization(s.nodes[i])
	}
	s.order = make([]int, len(s.nodes))
	for i := range s.order {
		s.order[i] = i
	}
	sort.Slice(s.order, func(a, b int) bool { return s.nodes[s.order[a]].util < s.nodes[s.order[b]].util })
}

// AddUnreported counts on each node the sessions handed to it after its
// agent last measured: sent holds when each session was handed out, by
// node. Without them a crowd would pour onto the node that looked empty
// at its last report until its next one, an agent interval later. A
// session handed out just before a report whose client connects just
// after it is in neither count until the next report: a node may take
// the few sessions of that moment past a class's ceiling, and the media
// server's own connection limit still bounds it.
func (s *Snapshot) AddUnreported(sent map[string][]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.nodes {
		c := &s.nodes[i]
		times := sent[c.id]
		// The times are in order: count those after the report.
		k := sort.Search(len(times), func(j int) bool { return times[j].After(c.reported) })
		if n := len(times) - k; n > 0 {
			c.load = c.load.Add(s.perConn.Times(float64(n)))
		}
	}
	s.sort()
}

// utilization is the node's busiest metric over its threshold, in percent;
// a node shifting in has its step's share of each threshold.
func (s *Snapshot) utilization(c candidate) float64 {
	return capacity.Utilization(s.pool, c.load, c.scale)
}

// Nodes is how many nodes may take sessions.
func (s *Snapshot) Nodes() int { return len(s.nodes) }

// Choose hands one session of class to a node, or refuses it: no node may
// take sessions, or none is under the class's ceiling.
func (s *Snapshot) Choose(class pool.Class, rng *rand.Rand) (Choice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.nodes) == 0 {
		return Choice{}, &Refusal{Class: class.Name, Reason: fmt.Sprintf("pool %s has no healthy serving node", s.pool.Name)}
	}
	best := s.nodes[s.order[0]].util
	if best >= class.CeilingPercent {
		return Choice{}, &Refusal{Class: class.Name, Reason: fmt.Sprintf("every node of pool %s is at or above %g%% of its scale-out threshold (the least loaded at %.0f%%)",
			s.pool.Name, class.CeilingPercent, best)}
	}
	// The near-equals are a prefix of the order.
	k := 1
	for k < len(s.order) && s.nodes[s.order[k]].util-best <= NearEqual*100 && s.nodes[s.order[k]].util < class.CeilingPercent {
		k++
	}
	at := rng.IntN(k)
	c := &s.nodes[s.order[at]]
	choice := Choice{Node: c.id, Endpoint: c.endpoint, Utilization: c.util}
	c.load = c.load.Add(s.perConn)
	c.util = s.utilization(*c)
	s.resort(at)
	return choice, nil
}

// resort moves the node at position i of the order, whose utilization
// rose, back to its place.
func (s *Snapshot) resort(i int) {
	node := s.order[i]
	for i+1 < len(s.order) && s.nodes[s.order[i+1]].util < s.nodes[node].util {
		s.order[i], s.order[i+1] = s.order[i+1], s.order[i]
		i++
	}
}
