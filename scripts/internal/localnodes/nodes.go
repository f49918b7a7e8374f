// Package localnodes gives every EC2 instance of a local cloud a media node
// of its own, as a real instance would have: a loopback address in
// 127.0.0.0/8 that no other local cloud uses, nginx-rtmp on the pool's
// real ports there, and the real node agent reporting to the local
// CloudWatch and node table. An instance that stops or terminates loses
// both. The functions reach each node through the endpoint file
// (health.EnvLocalEndpoints), never at the emulator's 10.x addresses.
package localnodes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mediascale/mediascale/scripts/testkit/loopback"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/health"
	"github.com/mediascale/mediascale/shared/pool"
)

// EC2 is what the manager reads of the local EC2.
type EC2 interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// Manager keeps one media node per running instance.
type Manager struct {
	EC2   EC2
	Pools pool.File
	// Subnet holds the first three bytes of the cloud's addresses,
	// 127.a.b: derived from a port the cloud holds, so two clouds on one
	// machine never share an address.
	Subnet [2]byte
	Dir    string
	// Endpoints is the file the functions resolve nodes through.
	Endpoints string
	// Agent is the node agent binary; AgentEnv its environment (the
	// local cloud's endpoint, credentials and the node table).
	Agent    string
	AgentEnv []string
	Log      *slog.Logger

	mu    sync.Mutex
	nodes map[string]*node // by instance id
	used  map[byte]bool
}

type node struct {
	id, pool, instance string
	host               string
	nginx              *medianode.Nginx
	agent              *exec.Cmd
}

// SubnetFor derives the cloud's 127.a.b prefix from a port it holds.
func SubnetFor(port int) [2]byte {
	return [2]byte{byte(port >> 8), byte(port)}
}

// Run syncs every half second until ctx ends, then stops every node.
func (m *Manager) Run(ctx context.Context) {
	defer m.StopAll()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.Log.Warn("syncing media nodes", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync starts a media node for every running instance of the cloud that
// has none and stops the node of every instance no longer running.
func (m *Manager) Sync(ctx context.Context) error {
	m.mu.Lock()
	if m.nodes == nil {
		m.nodes, m.used = map[string]*node{}, map[byte]bool{}
	}
	m.mu.Unlock()
	running := map[string]types.Instance{}
	pages := ec2.NewDescribeInstancesPaginator(m.EC2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + compute.TagEnv), Values: []string{m.Pools.Environment}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				running[aws.ToString(in.InstanceId)] = in
			}
		}
	}
	changed := false
	for id, in := range running {
		m.mu.Lock()
		_, have := m.nodes[id]
		m.mu.Unlock()
		if have {
			continue
		}
		if err := m.start(ctx, in); err != nil {
			m.Log.Warn("starting a media node", "instance", id, "error", err.Error())
			continue
		}
		changed = true
	}
	m.mu.Lock()
	var gone []*node
	for id, n := range m.nodes {
		if _, ok := running[id]; !ok {
			gone = append(gone, n)
			delete(m.nodes, id)
		}
	}
	m.mu.Unlock()
	for _, n := range gone {
		m.stop(n)
		changed = true
	}
	if changed {
		return m.writeEndpoints()
	}
	return nil
}

func tag(in types.Instance, key string) string {
	for _, t := range in.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func (m *Manager) start(ctx context.Context, in types.Instance) error {
	id, poolName, nodeID := aws.ToString(in.InstanceId), tag(in, compute.TagPool), tag(in, compute.TagNode)
	p, ok := m.Pools.Find(poolName)
	if !ok || nodeID == "" {
		return fmt.Errorf("instance %s has no pool or node tag of this environment (%q, %q)", id, poolName, nodeID)
	}
	m.mu.Lock()
	last := byte(0)
	for b := byte(2); b < 255; b++ {
		if !m.used[b] {
			last = b
			break
		}
	}
	if last == 0 {
		m.mu.Unlock()
		return fmt.Errorf("no loopback address left in 127.%d.%d.0/24", m.Subnet[0], m.Subnet[1])
	}
	m.used[last] = true
	m.mu.Unlock()
	host := net.IPv4(127, m.Subnet[0], m.Subnet[1], last).String()
	dir := filepath.Join(m.Dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	nginx, err := medianode.StartAt(dir, host, p.Probe.MediaPort, p.Probe.HealthPort)
	if err != nil {
		m.release(last)
		return err
	}
	n := &node{id: nodeID, pool: poolName, instance: id, host: host, nginx: nginx}
	n.agent, err = m.startAgent(ctx, p, n, dir)
	if err != nil {
		nginx.Stop()
		m.release(last)
		return err
	}
	m.mu.Lock()
	m.nodes[id] = n
	m.mu.Unlock()
	m.Log.Info("media node up", "instance", id, "pool", poolName, "node", nodeID, "address", host)
	return nil
}

func (m *Manager) release(last byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.used, last)
}

// startAgent runs the real node agent for the node, as the systemd unit
// would on an instance.
func (m *Manager) startAgent(_ context.Context, p pool.Pool, n *node, dir string) (*exec.Cmd, error) {
	cmd := exec.Command(m.Agent, "--pool", n.pool, "--node", n.id, "--host", n.host,
		"--health-port", strconv.Itoa(p.Probe.HealthPort), "--interval", p.AgentInterval().String(),
		"--high-resolution="+strconv.FormatBool(p.HighResolution()),
		// Every local node shares this machine: a node's CPU is its own
		// nginx's, not the machine's.
		"--cpu-pidfile", filepath.Join(n.nginx.Dir, "nginx.pid"))
	cmd.Env = m.AgentEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the agent: %w", err)
	}
	return cmd, nil
}

func (m *Manager) stop(n *node) {
	loopback.StopGroup(n.agent, 3*time.Second)
	n.nginx.Stop()
	ip := net.ParseIP(n.host).To4()
	m.release(ip[3])
	m.Log.Info("media node down", "instance", n.instance, "node", n.id, "address", n.host)
}

// StopAll stops every node.
func (m *Manager) StopAll() {
	m.mu.Lock()
	nodes := m.nodes
	m.nodes = map[string]*node{}
	m.mu.Unlock()
	for _, n := range nodes {
		m.stop(n)
	}
	_ = m.writeEndpoints()
}

// Nodes returns each running node's id and address, by node id.
func (m *Manager) Nodes() map[string]health.Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]health.Endpoint{}
	for _, n := range m.nodes {
		out[n.id] = health.Endpoint{Host: n.host, HealthPort: n.nginx.HealthPort, MediaPort: n.nginx.MediaPort}
	}
	return out
}

// writeEndpoints replaces the endpoint file atomically: a function reading
// it sees the old or the new map, never half of one.
func (m *Manager) writeEndpoints() error {
	nodes := m.Nodes()
	doc, err := json.MarshalIndent(map[string]any{"nodes": nodes}, "", "  ")
	if err != nil {
		return err
	}
	tmp := m.Endpoints + ".tmp"
	if err := os.WriteFile(tmp, doc, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, m.Endpoints)
}
