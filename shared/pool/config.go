// Package pool is the typed model of an environment's pool configuration:
// the YAML file an SRE team writes, validated field by field, and the JSON
// form the CDK app publishes to SSM for the Lambdas to read at cold start.
package pool

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Traffic modes.
const (
	TrafficRoute53 = "route53"
	TrafficALB     = "alb"
	TrafficNLB     = "nlb"
)

// Media kinds decide the probe's handshake and the default instance family.
const (
	MediaRTMP  = "rtmp"
	MediaSFU   = "sfu"
	MediaVoice = "voice"
)

// Handshakes the probe can perform on the media port.
const (
	HandshakeRTMP = "rtmp"
	HandshakeTCP  = "tcp"
)

// Managed in place of a subnet or launch template id asks the stack to
// create it: the dev environment's network and launch template live in the
// stack, so a fresh account (or the local cloud) needs nothing made by hand.
const Managed = "managed"

// DefaultShiftSteps are the traffic shares a new node carries, in order,
// when a pool does not list its own.
var DefaultShiftSteps = []int{10, 30, 50, 80, 100}

// File is one environment's configuration file.
type File struct {
	Environment string `yaml:"environment" json:"environment" required:"true"`
	// Budget bounds what all the environment's pools run at once; the
	// controller shares it by priority.
	Budget *Budget `yaml:"budget,omitempty" json:"budget,omitempty"`
	Pools  []Pool  `yaml:"pools" json:"pools" required:"true"`
}

// Budget is what the environment's pools may run together in its region:
// vCPUs (set it to the account's Running On-Demand instances vCPU quota,
// L-1216C47A, less what else runs in the region) and nodes. Zero leaves
// that bound off.
type Budget struct {
	VCPUs int `yaml:"vcpus,omitempty" json:"vcpus,omitempty"`
	Nodes int `yaml:"nodes,omitempty" json:"nodes,omitempty"`
}

// String says the budget as a reason does.
func (b Budget) String() string {
	var parts []string
	if b.VCPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d vCPUs", b.VCPUs))
	}
	if b.Nodes > 0 {
		parts = append(parts, fmt.Sprintf("%d nodes", b.Nodes))
	}
	return strings.Join(parts, " and ")
}

// Pool is a set of interchangeable media nodes serving one business in one
// region.
type Pool struct {
	Name           string         `yaml:"name" json:"name" required:"true"`
	Media          string         `yaml:"media" json:"media" required:"true"`
	Priority       int            `yaml:"priority" json:"priority"`
	Region         string         `yaml:"region" json:"region" required:"true"`
	Placement      []Placement    `yaml:"placement" json:"placement" required:"true"`
	LaunchTemplate LaunchTemplate `yaml:"launchTemplate" json:"launchTemplate" required:"true"`
	InstanceTypes  []string       `yaml:"instanceTypes" json:"instanceTypes" required:"true"`
	Capacity       Capacity       `yaml:"capacity" json:"capacity" required:"true"`
	Deploy         Deploy         `yaml:"deploy" json:"deploy" required:"true"`
	Probe          Probe          `yaml:"probe" json:"probe" required:"true"`
	Traffic        Traffic        `yaml:"traffic" json:"traffic" required:"true"`
	Alarms         Alarms         `yaml:"alarms" json:"alarms" required:"true"`
	Cooldowns      Cooldowns      `yaml:"cooldowns" json:"cooldowns" required:"true"`
	Drain          Drain          `yaml:"drain" json:"drain" required:"true"`
	Control        Control        `yaml:"control,omitempty" json:"control,omitempty"`
	Agent          Agent          `yaml:"agent,omitempty" json:"agent,omitempty"`
	Admission      Admission      `yaml:"admission,omitempty" json:"admission,omitempty"`
	Healing        Healing        `yaml:"healing,omitempty" json:"healing,omitempty"`
	// Shows are the pool's recurring shows: the controller raises the
	// pool's floor ahead of each (README.md, "Announced shows").
	Shows []Show `yaml:"shows,omitempty" json:"shows,omitempty"`
}

// Show is a recurring show of the pool file: on each of its days, at its
// start time (UTC), an audience of about Peak sessions arrives over Ramp.
type Show struct {
	Name string `yaml:"name" json:"name" required:"true"`
	// Days are the weekdays it runs (mon ... sun); none means every day.
	Days []string `yaml:"days,omitempty" json:"days,omitempty"`
	// Start is the time of day it starts, HH:MM in UTC.
	Start string `yaml:"start" json:"start" required:"true"`
	// Peak is the sessions expected at its peak.
	Peak int `yaml:"peak" json:"peak" required:"true"`
	// Ramp is how long the audience takes to arrive (default none: all
	// at the start).
	Ramp Duration `yaml:"ramp,omitempty" json:"ramp,omitempty"`
}

// Weekdays are the names a show's days take, Sunday first as Go counts.
var Weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// At returns the show's start on the day of t (UTC), and whether it runs
// that day. The start time must be valid (Validate checks it).
func (s Show) At(t time.Time) (time.Time, bool) {
	clock, err := time.Parse("15:04", s.Start)
	if err != nil {
		return time.Time{}, false
	}
	day := t.UTC().Truncate(24 * time.Hour)
	at := day.Add(time.Duration(clock.Hour())*time.Hour + time.Duration(clock.Minute())*time.Minute)
	if len(s.Days) == 0 {
		return at, true
	}
	for _, d := range s.Days {
		if d == Weekdays[day.Weekday()] {
			return at, true
		}
	}
	return at, false
}

// Healing says when a serving node is taken out as unhealthy and how
// often a pool may replace one (README.md, "Self-healing").
type Healing struct {
	// Failures is how many health checks in a row a node must fail
	// (default 2): one lost heartbeat or slow answer is no reason to
	// drop a node's users.
	Failures int `yaml:"failures,omitempty" json:"failures,omitempty"`
	// MaxReplacementsPerHour bounds the nodes replaced in any hour
	// (default 3): when every new node fails too (a bad image, a broken
	// deploy), replacing them in a loop only burns instances. Unhealthy
	// nodes still lose their traffic past the bound.
	MaxReplacementsPerHour int `yaml:"maxReplacementsPerHour,omitempty" json:"maxReplacementsPerHour,omitempty"`
}

// Healing defaults.
const (
	DefaultHealthFailures         = 2
	DefaultMaxReplacementsPerHour = 3
)

// Healer returns the pool's healing settings with every default filled in.
func (p Pool) Healer() Healing {
	h := p.Healing
	if h.Failures == 0 {
		h.Failures = DefaultHealthFailures
	}
	if h.MaxReplacementsPerHour == 0 {
		h.MaxReplacementsPerHour = DefaultMaxReplacementsPerHour
	}
	return h
}

// Placement is one availability zone and the subnet nodes launch into there.
type Placement struct {
	AZ     string `yaml:"az" json:"az" required:"true"`
	Subnet string `yaml:"subnet" json:"subnet" required:"true"`
}

// LaunchTemplate pins the EC2 launch template to a numbered version, so a
// change to the template never reaches a pool without a config change.
type LaunchTemplate struct {
	ID      string `yaml:"id" json:"id" required:"true"`
	Version string `yaml:"version" json:"version" required:"true"`
}

// Capacity bounds the pool and the size of one scaling step.
type Capacity struct {
	Min          int `yaml:"min" json:"min" required:"true"`
	Max          int `yaml:"max" json:"max" required:"true"`
	ScaleOutStep int `yaml:"scaleOutStep" json:"scaleOutStep" required:"true"`
	ScaleInStep  int `yaml:"scaleInStep" json:"scaleInStep" required:"true"`
	WarmPool     int `yaml:"warmPool" json:"warmPool"`
	// Preemptible lets a pool of higher priority that the environment's
	// budget holds back take this pool's nodes, down to its min. Without
	// it a pool's serving nodes are never taken for another's growth.
	Preemptible bool `yaml:"preemptible,omitempty" json:"preemptible,omitempty"`
}

// Deploy names the SSM document that installs the media server on a node.
type Deploy struct {
	Document   string            `yaml:"document" json:"document" required:"true"`
	Parameters map[string]string `yaml:"parameters" json:"parameters,omitempty"`
	Timeout    Duration          `yaml:"timeout" json:"timeout" required:"true"`
}

// Probe says how a new node proves it is healthy before it gets traffic.
type Probe struct {
	HealthPath string   `yaml:"healthPath" json:"healthPath" required:"true"`
	HealthPort int      `yaml:"healthPort" json:"healthPort" required:"true"`
	MediaPort  int      `yaml:"mediaPort" json:"mediaPort" required:"true"`
	Handshake  string   `yaml:"handshake" json:"handshake" required:"true"`
	Timeout    Duration `yaml:"timeout" json:"timeout" required:"true"`
	MaxLatency Duration `yaml:"maxLatency" json:"maxLatency" required:"true"`
	Attempts   int      `yaml:"attempts" json:"attempts" required:"true"`
	Interval   Duration `yaml:"interval" json:"interval" required:"true"`
	// Session, for an RTMP pool, makes a real media session through the
	// node on every probe and health check: a test stream published and
	// played back, failed when no media arrives in time.
	Session *SessionCheck `yaml:"session,omitempty" json:"session,omitempty"`
}

// SessionCheck is the synthetic session a probe makes.
type SessionCheck struct {
	// App is the media server's application the test stream goes to.
	App string `yaml:"app" json:"app" required:"true"`
	// MaxTimeToFirstMedia is how long after the play command the first
	// audio or video frame must reach the player.
	MaxTimeToFirstMedia Duration `yaml:"maxTimeToFirstMedia" json:"maxTimeToFirstMedia" required:"true"`
}

// Traffic says how traffic reaches the pool's nodes and how a new node's
// share grows.
type Traffic struct {
	Mode         string        `yaml:"mode" json:"mode" required:"true"`
	Route53      *Route53      `yaml:"route53,omitempty" json:"route53,omitempty"`
	LoadBalancer *LoadBalancer `yaml:"loadBalancer,omitempty" json:"loadBalancer,omitempty"`
	Bake         Duration      `yaml:"bake" json:"bake" required:"true"`
	// PressureBake caps every step's bake while the pool is overloaded,
	// its ACTIVE nodes above a scale-out alarm threshold on average
	// (default 15s): a slow canary then costs more users than it guards.
	// The guard still judges the node before each step.
	PressureBake Duration `yaml:"pressureBake,omitempty" json:"pressureBake,omitempty"`
	Guard        Guard    `yaml:"guard" json:"guard" required:"true"`
	Steps        []Step   `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Balance, for a Route53 pool, moves the ACTIVE nodes' record weights
	// toward their headroom every minute (default true); false keeps
	// every ACTIVE node at full weight.
	Balance *bool `yaml:"balance,omitempty" json:"balance,omitempty"`
}

// LoadAwareWeights reports whether the pool's record weights follow its
// nodes' headroom (traffic.balance, default true).
func (t Traffic) LoadAwareWeights() bool { return t.Balance == nil || *t.Balance }

// DefaultPressureBake is traffic.pressureBake's default.
const DefaultPressureBake = 15 * time.Second

// PressureBakeOrDefault is the pool's traffic.pressureBake with its default.
func (t Traffic) PressureBakeOrDefault() time.Duration {
	if t.PressureBake == 0 {
		return DefaultPressureBake
	}
	return t.PressureBake.D()
}

// Route53 locates the weighted record set that fronts the pool.
type Route53 struct {
	HostedZoneID string `yaml:"hostedZoneId" json:"hostedZoneId" required:"true"`
	RecordName   string `yaml:"recordName" json:"recordName" required:"true"`
	TTL          int    `yaml:"ttl" json:"ttl" required:"true"`
}

// LoadBalancer locates the listener that fronts the pool and its two
// target groups: serving nodes sit in the stable group; nodes being shifted
// in sit in the canary group, whose weight on the listener's forward action
// gives them their share. ELBv2 has no per-target weight, so this is how a
// node takes 10 %, then 30 %... of a full node's traffic.
type LoadBalancer struct {
	ListenerArn          string `yaml:"listenerArn" json:"listenerArn" required:"true"`
	TargetGroupArn       string `yaml:"targetGroupArn" json:"targetGroupArn" required:"true"`
	CanaryTargetGroupArn string `yaml:"canaryTargetGroupArn" json:"canaryTargetGroupArn" required:"true"`
	Port                 int    `yaml:"port" json:"port" required:"true"`
}

// Step is one traffic share with its own bake time and guard; a zero bake or
// a missing guard inherits the pool's.
type Step struct {
	Percent int      `yaml:"percent" json:"percent" required:"true"`
	Bake    Duration `yaml:"bake,omitempty" json:"bake,omitempty"`
	Guard   *Guard   `yaml:"guard,omitempty" json:"guard,omitempty"`
}

// Guard is what must hold after a traffic step has baked before the next
// one is taken. Alarms must exist and be OK.
type Guard struct {
	MaxCPUPercent         float64  `yaml:"maxCpuPercent" json:"maxCpuPercent" required:"true"`
	MaxConnectionsPerNode int      `yaml:"maxConnectionsPerNode" json:"maxConnectionsPerNode" required:"true"`
	MaxErrorRatePercent   float64  `yaml:"maxErrorRatePercent" json:"maxErrorRatePercent" required:"true"`
	Alarms                []string `yaml:"alarms,omitempty" json:"alarms,omitempty"`
}

// Alarms holds the thresholds of the alarms that drive scaling.
type Alarms struct {
	ScaleOut Thresholds `yaml:"scaleOut" json:"scaleOut" required:"true"`
	ScaleIn  Thresholds `yaml:"scaleIn" json:"scaleIn" required:"true"`
}

// Thresholds are per-node averages across the pool, evaluated over
// EvaluationPeriods periods of Period each.
type Thresholds struct {
	CPUPercent           float64  `yaml:"cpuPercent" json:"cpuPercent" required:"true"`
	ConnectionsPerNode   float64  `yaml:"connectionsPerNode" json:"connectionsPerNode" required:"true"`
	BandwidthMbpsPerNode float64  `yaml:"bandwidthMbpsPerNode" json:"bandwidthMbpsPerNode" required:"true"`
	Period               Duration `yaml:"period" json:"period" required:"true"`
	EvaluationPeriods    int      `yaml:"evaluationPeriods" json:"evaluationPeriods" required:"true"`
}

// Cooldowns are how long after a scale event the pool ignores alarms in the
// same direction. Scale-in waits longer than scale-out.
type Cooldowns struct {
	ScaleOut Duration `yaml:"scaleOut" json:"scaleOut" required:"true"`
	ScaleIn  Duration `yaml:"scaleIn" json:"scaleIn" required:"true"`
}

// Drain says how long a leaving node may keep its sessions and how few
// sessions count as drained.
type Drain struct {
	Timeout             Duration `yaml:"timeout" json:"timeout" required:"true"`
	ConnectionThreshold int      `yaml:"connectionThreshold" json:"connectionThreshold"`
}

// Control tunes the controller that sizes the pool (README.md, "How the
// controller sizes a pool"). Every field has a default; zero means "use it".
type Control struct {
	// TargetPercent is the per-node load the controller aims for, in
	// percent of each scale-out alarm threshold (default 80).
	TargetPercent float64 `yaml:"targetPercent,omitempty" json:"targetPercent,omitempty"`
	// TolerancePercent is the band around the target inside which the
	// pool is left alone, against jitter (default 10, as Kubernetes' HPA).
	TolerancePercent float64 `yaml:"tolerancePercent,omitempty" json:"tolerancePercent,omitempty"`
	// MaxGrowthPercent bounds one decision's growth: at most this share of
	// the current capacity, or capacity.scaleOutStep nodes if that is more
	// (default 100: the pool may double per decision, as HPA's scale-up).
	MaxGrowthPercent int `yaml:"maxGrowthPercent,omitempty" json:"maxGrowthPercent,omitempty"`
	// MaxShrinkPercent bounds one decision's scale-in: at most this share
	// of the current capacity, or capacity.scaleInStep nodes if that is
	// more (default 50). Leaving nodes drain their sessions, so a larger
	// step costs no call; the stabilization window guards against flapping.
	MaxShrinkPercent int `yaml:"maxShrinkPercent,omitempty" json:"maxShrinkPercent,omitempty"`
	// ScaleInWindow is the stabilization window: the pool shrinks only to
	// the largest size any load in this window called for (default: the
	// scale-in alarm's window, period x evaluation periods).
	ScaleInWindow Duration `yaml:"scaleInWindow,omitempty" json:"scaleInWindow,omitempty"`
}

// Agent says how the node agent on every node reports.
type Agent struct {
	// Interval between two reports (default 10s). A node whose last
	// heartbeat is older than three intervals counts as not reporting.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// Admission says which new sessions the entry dispatcher admits while the
// pool is busy: each class of session while some node is under that
// class's ceiling, so that when the pool is full the lower classes are
// refused first and the calls already running keep their quality.
type Admission struct {
	// Classes, each with its ceiling. Without any the pool admits one
	// class, "default", up to the media server's own limit.
	Classes []Class `yaml:"classes,omitempty" json:"classes,omitempty"`
	// RetryAfter is what a refused client is told to wait before it asks
	// again (default 5s). The controller counts a refused client once per
	// RetryAfter, so it is also how long a refusal stands for demand.
	RetryAfter Duration `yaml:"retryAfter,omitempty" json:"retryAfter,omitempty"`
	// Fallbacks are pools in other regions, most preferred first, that
	// take a new session this pool refuses or cannot serve.
	Fallbacks []Fallback `yaml:"fallbacks,omitempty" json:"fallbacks,omitempty"`
}

// Fallback names a pool of another environment's stack, deployed in
// another region, by where its node table and configuration live: the
// dispatcher reads both there, at most once a second while it spills.
type Fallback struct {
	Region      string `yaml:"region" json:"region" required:"true"`
	Environment string `yaml:"environment" json:"environment" required:"true"`
	Pool        string `yaml:"pool" json:"pool" required:"true"`
}

// String names the fallback as logs and errors do.
func (f Fallback) String() string { return f.Environment + "/" + f.Pool + " (" + f.Region + ")" }

// Class is one kind of session and the node utilization past which it is
// refused: a node's busiest metric (sessions, CPU, bandwidth) in percent of
// its alarms.scaleOut threshold.
type Class struct {
	Name           string  `yaml:"name" json:"name" required:"true"`
	CeilingPercent float64 `yaml:"ceilingPercent" json:"ceilingPercent" required:"true"`
}

// DefaultClass is the one class of a pool that names none.
const DefaultClass = "default"

// DefaultRetryAfter is admission.retryAfter's default.
const DefaultRetryAfter = 5 * time.Second

// AdmissionClasses are the pool's classes, or its one default class: up
// to the media server's admission limit (maxConnections), or the scale-out
// threshold when the pool sets no limit.
func (p Pool) AdmissionClasses() []Class {
	if len(p.Admission.Classes) > 0 {
		return p.Admission.Classes
	}
	return []Class{{Name: DefaultClass, CeilingPercent: p.limitPercent()}}
}

// limitPercent is the media server's admission limit in percent of the
// sessions scale-out threshold, 100 when either is unset.
func (p Pool) limitPercent() float64 {
	if l, t := p.AdmissionLimit(), p.Alarms.ScaleOut.ConnectionsPerNode; l > 0 && t > 0 {
		return 100 * l / t
	}
	return 100
}

// RetryAfter is the pool's admission.retryAfter with its default.
func (p Pool) RetryAfter() time.Duration {
	if p.Admission.RetryAfter == 0 {
		return DefaultRetryAfter
	}
	return p.Admission.RetryAfter.D()
}

// Control defaults.
const (
	DefaultTargetPercent    = 80
	DefaultTolerancePercent = 10
	DefaultMaxGrowthPercent = 100
	DefaultMaxShrinkPercent = 50
	DefaultAgentInterval    = 10 * time.Second
	// heartbeatIntervals is how many agent intervals a heartbeat stays
	// fresh: one lost report is no reason to distrust a node.
	heartbeatIntervals = 3
)

// Controller returns the pool's control settings with every default
// filled in.
func (p Pool) Controller() Control {
	c := p.Control
	if c.TargetPercent == 0 {
		c.TargetPercent = DefaultTargetPercent
	}
	if c.TolerancePercent == 0 {
		c.TolerancePercent = DefaultTolerancePercent
	}
	if c.MaxGrowthPercent == 0 {
		c.MaxGrowthPercent = DefaultMaxGrowthPercent
	}
	if c.MaxShrinkPercent == 0 {
		c.MaxShrinkPercent = DefaultMaxShrinkPercent
	}
	if c.ScaleInWindow == 0 {
		c.ScaleInWindow = Duration(p.Alarms.ScaleIn.Period.D() * time.Duration(p.Alarms.ScaleIn.EvaluationPeriods))
	}
	return c
}

// AgentInterval is how often the pool's node agents report.
func (p Pool) AgentInterval() time.Duration {
	if p.Agent.Interval == 0 {
		return DefaultAgentInterval
	}
	return p.Agent.Interval.D()
}

// AdmissionLimit is how many sessions one node's media server admits,
// the deploy parameter maxConnections, or 0 when the pool does not set one.
// Sessions past it are refused, so a node's reported load never exceeds it.
func (p Pool) AdmissionLimit() float64 {
	if v, err := strconv.ParseFloat(p.Deploy.Parameters["maxConnections"], 64); err == nil && v > 0 {
		return v
	}
	return 0
}

// HeartbeatMaxAge is how old a node's heartbeat may be and still count.
func (p Pool) HeartbeatMaxAge() time.Duration { return heartbeatIntervals * p.AgentInterval() }

// HighResolution reports whether the pool's metrics must be stored at
// one-second resolution: an alarm with a period under a minute reads them.
func (p Pool) HighResolution() bool {
	return p.Alarms.ScaleOut.Period.D() < time.Minute || p.Alarms.ScaleIn.Period.D() < time.Minute
}

// Duration is a time.Duration written as Go duration text ("90s", "5m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts only duration text, so a bare number (whose unit
// would be a guess) is refused.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return d.parse(n.Value)
}

// MarshalYAML writes duration text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON accepts duration text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be text such as \"90s\": %w", err)
	}
	return d.parse(s)
}

// MarshalJSON writes duration text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"90s\" or \"5m\"", s)
	}
	*d = Duration(v)
	return nil
}

// ShiftSteps returns the pool's traffic steps with every inherited value
// filled in: the default 10/30/50/80/100 when none are listed, the pool's
// bake time and guard where a step has none.
func (p Pool) ShiftSteps() []Step {
	steps := p.Traffic.Steps
	if len(steps) == 0 {
		steps = make([]Step, len(DefaultShiftSteps))
		for i, pct := range DefaultShiftSteps {
			steps[i] = Step{Percent: pct}
		}
	}
	out := make([]Step, len(steps))
	for i, s := range steps {
		out[i] = s
		if out[i].Bake == 0 {
			out[i].Bake = p.Traffic.Bake
		}
		if out[i].Guard == nil {
			g := p.Traffic.Guard
			out[i].Guard = &g
		}
	}
	return out
}

// ShiftTime is how long a new node takes from its first traffic step to
// full weight: the bake of every step but the last, which is full weight
// at once.
func (p Pool) ShiftTime() time.Duration {
	var d time.Duration
	steps := p.ShiftSteps()
	for _, s := range steps[:len(steps)-1] {
		d += s.Bake.D()
	}
	return d
}

// Next is the show's first start at or after t, within the coming week; ok
// is false for a show that runs on none of its days (Validate refuses it).
func (s Show) Next(t time.Time) (time.Time, bool) {
	for day := 0; day <= 7; day++ {
		if at, ok := s.At(t.Add(time.Duration(day) * 24 * time.Hour)); ok && !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// FallbackLead is how long the pool takes from a scaling decision to its
// nodes at full weight before it has measured that itself: ten minutes for
// a cold node to launch, register with SSM and deploy, plus the bake of
// every shift step before the last.
func (p Pool) FallbackLead() time.Duration {
	return 10*time.Minute + p.ShiftTime()
}

// WarmLead is how long a node started from the warm pool takes from the
// decision to full weight before the pool has measured it: a minute to
// start the stopped instance and probe it, plus the shift bakes.
func (p Pool) WarmLead() time.Duration {
	return time.Minute + p.ShiftTime()
}

// Find returns the pool with the given name.
func (f File) Find(name string) (Pool, bool) {
	for _, p := range f.Pools {
		if p.Name == name {
			return p, true
		}
	}
	return Pool{}, false
}

// vcpusBySize is how many vCPUs each EC2 size has in the compute, general
// purpose and memory families mediascale runs on (c, m, r and their g, gn,
// i, a variants): the size names the vCPU count across them.
var vcpusBySize = map[string]int{
	"medium": 1, "large": 2, "xlarge": 4, "2xlarge": 8, "3xlarge": 12, "4xlarge": 16, "6xlarge": 24, "8xlarge": 32,
	"9xlarge": 36, "12xlarge": 48, "16xlarge": 64, "18xlarge": 72, "24xlarge": 96, "32xlarge": 128, "48xlarge": 192,
}

// VCPUsOf is an instance type's vCPU count, from its size; ok is false
// for a size the table does not know.
func VCPUsOf(instanceType string) (int, bool) {
	_, size, found := strings.Cut(instanceType, ".")
	n, ok := vcpusBySize[size]
	return n, found && ok
}

// VCPUsPerNode is the most vCPUs a node of the pool may have: the largest
// of its instance types, since a launch may fall back to any of them.
func (p Pool) VCPUsPerNode() int {
	most := 0
	for _, t := range p.InstanceTypes {
		if n, ok := VCPUsOf(t); ok && n > most {
			most = n
		}
	}
	return most
}
