// Package stack defines the mediascale CloudFormation stack of one
// environment: the node table, the published pool configuration, the
// functions and their roles.
package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"

	"github.com/mediascale/mediascale/shared/pool"
)

// Settings are one environment's deployment settings from cdk.json context
// ("environments": {"dev": {...}}).
type Settings struct {
	// Account and Region pin the stack to one account; left empty, the
	// template stays account- and region-agnostic and takes both from the
	// credentials used to deploy it.
	Account string `json:"account"`
	Region  string `json:"region"`
	// Config is the pool file, relative to the repository root.
	Config string `json:"config"`
	// PointInTimeRecovery, DeletionProtection and RetainData protect the
	// node table (and logs) of environments whose data must outlive a
	// mistaken destroy.
	PointInTimeRecovery bool `json:"pointInTimeRecovery"`
	DeletionProtection  bool `json:"deletionProtection"`
	RetainData          bool `json:"retainData"`
	// LogRetentionDays is how long function logs are kept.
	LogRetentionDays int `json:"logRetentionDays"`
	// Network is where the probe, drain and heal functions run.
	Network Network `json:"network"`
}

// Network places the probe, drain and heal functions, which must reach the
// nodes' health and media ports, inside the pools' VPC. Left empty, the
// stack creates the VPC (as dev does), with private subnets for the
// functions; then every pool must use "managed" subnets.
type Network struct {
	// VpcID is the VPC the pools' subnets belong to.
	VpcID string `json:"vpcId"`
	// FunctionSubnets are private subnets of that VPC with a route to the
	// AWS APIs (a NAT gateway or VPC endpoints), one per zone at least.
	FunctionSubnets []string `json:"functionSubnets"`
	// NodeSecurityGroups are the security groups of the pools' own launch
	// templates; the stack admits the functions into them on each pool's
	// health and media ports.
	NodeSecurityGroups []string `json:"nodeSecurityGroups"`
}

// ReadContext reads the context block of a cdk.json, as the CDK CLI hands
// it to the app, for tests and tools that need the same settings.
func ReadContext(cdkJSON string) (map[string]any, error) {
	raw, err := os.ReadFile(cdkJSON)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", cdkJSON, err)
	}
	return doc.Context, nil
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
	vpcPattern     = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	subnetPattern  = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	groupPattern   = regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`)
)

// logRetentions are the retention periods CloudWatch Logs accepts, in days.
var logRetentions = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// SettingsFor decodes the "environments" context value and returns the
// named environment's settings, refusing unknown fields and bad values with
// the path of the field. The value is the object in cdk.json, or the same
// object as a JSON string when a run overrides it with
// -c environments='{...}' (the CDK CLI passes context values as strings).
func SettingsFor(environments any, env string) (Settings, error) {
	raw, isText := environments.(string)
	if !isText {
		encoded, err := json.Marshal(environments)
		if err != nil {
			return Settings{}, fmt.Errorf("context environments: %w", err)
		}
		raw = string(encoded)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &all); err != nil || all == nil {
		return Settings{}, fmt.Errorf("context environments: must be an object of environment name to settings")
	}
	one, ok := all[env]
	if !ok {
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		sort.Strings(names)
		return Settings{}, fmt.Errorf("context environments.%s: no such environment (have %s); choose one with -c env=NAME", env, strings.Join(names, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(one))
	dec.DisallowUnknownFields()
	var s Settings
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("context environments.%s: %w", env, err)
	}
	if s.Account != "" && !accountPattern.MatchString(s.Account) {
		return Settings{}, fmt.Errorf("context environments.%s.account: must be 12 digits or empty, got %q", env, s.Account)
	}
	if s.Region != "" && !regionPattern.MatchString(s.Region) {
		return Settings{}, fmt.Errorf("context environments.%s.region: must be an AWS region or empty, got %q", env, s.Region)
	}
	if s.Config == "" {
		return Settings{}, fmt.Errorf("context environments.%s.config: required field is missing", env)
	}
	if _, ok := logRetentions[s.LogRetentionDays]; !ok {
		return Settings{}, fmt.Errorf("context environments.%s.logRetentionDays: %d is not a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)", env, s.LogRetentionDays)
	}
	if err := s.Network.check(); err != nil {
		return Settings{}, fmt.Errorf("context environments.%s.network.%w", env, err)
	}
	return s, nil
}

// check enforces the shape of each id; which pools need a VPC is
// CheckPools' business.
func (n Network) check() error {
	if n.VpcID == "" {
		if len(n.FunctionSubnets)+len(n.NodeSecurityGroups) > 0 {
			return fmt.Errorf("vpcId: required when functionSubnets or nodeSecurityGroups are given")
		}
		return nil
	}
	if !vpcPattern.MatchString(n.VpcID) {
		return fmt.Errorf("vpcId: must look like vpc-0123456789abcdef0, got %q", n.VpcID)
	}
	if len(n.FunctionSubnets) == 0 {
		return fmt.Errorf("functionSubnets: required with vpcId: the probe, drain and heal functions run in them")
	}
	for i, id := range n.FunctionSubnets {
		if !subnetPattern.MatchString(id) {
			return fmt.Errorf("functionSubnets[%d]: must look like subnet-0123456789abcdef0, got %q", i, id)
		}
	}
	for i, id := range n.NodeSecurityGroups {
		if !groupPattern.MatchString(id) {
			return fmt.Errorf("nodeSecurityGroups[%d]: must look like sg-0123456789abcdef0, got %q", i, id)
		}
	}
	return nil
}

// CheckPools enforces what ties the pool file to the deployment: the file
// belongs to this environment; pools in subnets of their own name the VPC
// the functions must join, and pools in the stack's subnets do not; and
// the pools live in the stack's region, because alarms and functions are
// regional.
func CheckPools(env string, s Settings, f pool.File) error {
	if f.Environment != env {
		return fmt.Errorf("%s: environment is %q, but it is configured for environment %q", s.Config, f.Environment, env)
	}
	net := "context environments." + env + ".network"
	for i, p := range f.Pools {
		for j, pl := range p.Placement {
			switch {
			case pl.Subnet != pool.Managed && s.Network.VpcID == "":
				return fmt.Errorf("%s: pools[%d].placement[%d].subnet is %s, in a VPC the stack does not know: set %s.vpcId and functionSubnets so the probe, drain and heal functions can reach its nodes", s.Config, i, j, pl.Subnet, net)
			case pl.Subnet == pool.Managed && s.Network.VpcID != "":
				return fmt.Errorf("%s: pools[%d].placement[%d].subnet is managed, but %s.vpcId is set: managed subnets exist only in the VPC the stack creates; name the pool's subnets in %s", s.Config, i, j, net, s.Network.VpcID)
			}
		}
		if p.LaunchTemplate.ID != pool.Managed && len(s.Network.NodeSecurityGroups) == 0 {
			return fmt.Errorf("%s: pools[%d].launchTemplate.id is %s: set %s.nodeSecurityGroups to its security groups, so the stack can admit the probe, drain and heal functions", s.Config, i, p.LaunchTemplate.ID, net)
		}
	}
	if s.Region == "" {
		return nil
	}
	for i, p := range f.Pools {
		if p.Region != s.Region {
			return fmt.Errorf("%s: pools[%d].region: must be the environment's region %s (one stack per environment and region), got %s", s.Config, i, s.Region, p.Region)
		}
	}
	return nil
}

// CheckFallbacks follows each pool's admission.fallbacks to the
// environment that deploys it: that environment is configured here, lives
// in the region the fallback names, in this account, and its pool file has
// the pool with every admission class of the pool it backs (a spilled
// session keeps its class). other reads another environment's settings
// and pool file.
func CheckFallbacks(env string, s Settings, f pool.File, other func(env string) (Settings, pool.File, error)) error {
	for i, p := range f.Pools {
		for j, fb := range p.Admission.Fallbacks {
			at := fmt.Sprintf("%s: pools[%d].admission.fallbacks[%d]", s.Config, i, j)
			if fb.Environment == env {
				return fmt.Errorf("%s.environment: %s is this environment; a fallback is another environment's pool in another region", at, env)
			}
			fs, ff, err := other(fb.Environment)
			if err != nil {
				return fmt.Errorf("%s.environment: %w", at, err)
			}
			if fs.Region != "" && fs.Region != fb.Region {
				return fmt.Errorf("%s.region: environment %s is deployed in %s, not %s", at, fb.Environment, fs.Region, fb.Region)
			}
			if fs.Account != s.Account {
				return fmt.Errorf("%s.environment: %s is deployed in account %q and this environment in %q; the dispatcher reads a fallback's table with its own role, in its own account", at, fb.Environment, fs.Account, s.Account)
			}
			target, ok := ff.Find(fb.Pool)
			if !ok {
				return fmt.Errorf("%s.pool: %s (%s) has no pool %q", at, fb.Environment, fs.Config, fb.Pool)
			}
			if target.Region != fb.Region {
				return fmt.Errorf("%s.region: pool %s of %s is in %s, not %s", at, fb.Pool, fb.Environment, target.Region, fb.Region)
			}
			for _, c := range p.AdmissionClasses() {
				if !hasClass(target, c.Name) {
					return fmt.Errorf("%s.pool: %s of %s has no admission class %q; a session spilled there keeps its class", at, fb.Pool, fb.Environment, c.Name)
				}
			}
		}
	}
	return nil
}

func hasClass(p pool.Pool, name string) bool {
	for _, c := range p.AdmissionClasses() {
		if c.Name == name {
			return true
		}
	}
	return false
}
