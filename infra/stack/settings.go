// Package stack defines the mediascale CloudFormation stack of one
// environment: the node table, the published pool configuration, the
// functions and their roles.
package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
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
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
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
// the path of the field.
func SettingsFor(environments any, env string) (Settings, error) {
	raw, err := json.Marshal(environments)
	if err != nil {
		return Settings{}, fmt.Errorf("context environments: %w", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil || all == nil {
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
	return s, nil
}

// CheckPools enforces what ties the pool file to the deployment: the file
// belongs to this environment, and its pools live in the stack's region,
// because alarms and functions are regional.
func CheckPools(env string, s Settings, f pool.File) error {
	if f.Environment != env {
		return fmt.Errorf("%s: environment is %q, but it is configured for environment %q", s.Config, f.Environment, env)
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
