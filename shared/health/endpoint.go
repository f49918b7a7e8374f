// Package health decides whether a media node may take traffic: where to
// reach it, and a probe of its health endpoint and media port.
package health

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/mediascale/mediascale/shared/pool"
)

// Endpoint is where a node's health and media ports are reached.
type Endpoint struct {
	Host       string `json:"host"`
	HealthPort int    `json:"healthPort"`
	MediaPort  int    `json:"mediaPort"`
}

// EnvLocalEndpoints names the JSON files (a list, separated as PATH is)
// that map nodes to media servers a local run started on loopback: one
// per region of the local cloud. It is set only by the local cloud; on AWS
// nodes are reached at their private address.
const EnvLocalEndpoints = "MEDIASCALE_LOCAL_ENDPOINTS"

// localEndpoints is the file's shape: a default for every node and
// optional entries per node id.
type localEndpoints struct {
	Default *Endpoint           `json:"default"`
	Nodes   map[string]Endpoint `json:"nodes"`
}

// Resolve returns the endpoint of a node from its private address and the
// pool's ports, or from the local endpoint file when one is configured. A
// local endpoint must be on loopback: local runs never dial the emulator's
// made-up 10.x or 172.x addresses.
func Resolve(node, privateIP string, p pool.Pool) (Endpoint, error) {
	ep := Endpoint{Host: privateIP, HealthPort: p.Probe.HealthPort, MediaPort: p.Probe.MediaPort}
	path := os.Getenv(EnvLocalEndpoints)
	if path == "" {
		if ep.Host == "" {
			return Endpoint{}, fmt.Errorf("node %s has no private address yet", node)
		}
		return ep, nil
	}
	chosen, err := localEndpoint(node, filepath.SplitList(path))
	if err != nil {
		return Endpoint{}, err
	}
	if ip := net.ParseIP(chosen.Host); ip == nil || !ip.IsLoopback() {
		return Endpoint{}, fmt.Errorf("local endpoint %q of node %s is not a loopback address", chosen.Host, node)
	}
	if chosen.HealthPort == 0 {
		chosen.HealthPort = ep.HealthPort
	}
	if chosen.MediaPort == 0 {
		chosen.MediaPort = ep.MediaPort
	}
	return chosen, nil
}

// localEndpoint finds the node in the first file that names it, or takes
// the first default.
func localEndpoint(node string, paths []string) (Endpoint, error) {
	var fallback *Endpoint
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return Endpoint{}, fmt.Errorf("reading local endpoints: %w", err)
		}
		var local localEndpoints
		if err := json.Unmarshal(raw, &local); err != nil {
			return Endpoint{}, fmt.Errorf("reading local endpoints %s: %w", path, err)
		}
		if ep, ok := local.Nodes[node]; ok {
			return ep, nil
		}
		if fallback == nil {
			fallback = local.Default
		}
	}
	if fallback == nil {
		return Endpoint{}, fmt.Errorf("local endpoints %s: no entry for node %s and no default", strings.Join(paths, ", "), node)
	}
	return *fallback, nil
}
