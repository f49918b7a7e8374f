package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Revision names what a node of the pool is built from: the launch
// template version it boots and what the deploy step puts on it (document,
// parameters, agent settings). A warm node parked at one revision is
// stale once the pool moves to another, and is replaced rather than
// started, as an instance refresh replaces warm-pool instances.
//
// It reads "<template>:<version>/<hash>", so an operator sees at a glance
// whether a launch template change or a deploy change made a node stale.
func (p Pool) Revision() string {
	keys := make([]string, 0, len(p.Deploy.Parameters))
	for k := range p.Deploy.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\n%t\n", p.Deploy.Document, p.AgentInterval(), p.HighResolution())
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, p.Deploy.Parameters[k])
	}
	sum := sha256.Sum256([]byte(b.String()))
	return fmt.Sprintf("%s:%s/%s", p.LaunchTemplate.ID, p.LaunchTemplate.Version, hex.EncodeToString(sum[:4]))
}
