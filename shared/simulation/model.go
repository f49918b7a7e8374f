package simulation

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mediascale/mediascale/shared/pool"
)

// Model is how long things take on AWS and how sessions behave. Every
// policy runs under the same model; the pool file supplies what is the
// pool's own (alarm periods, probe interval, shift steps and bakes, drain
// timeout, warm pool). Each default names its source; a model file
// (YAML or JSON, the same field names) overrides any of them.
type Model struct {
	// Step is the simulation's resolution: every node, alarm and
	// policy is looked at this often.
	Step pool.Duration `yaml:"step" json:"step"`
	// Trigger is EventBridge's delivery of an alarm's state change and
	// the trigger's decision (Go Lambda cold start about 40 ms; delivery
	// within a second or so: assumed 1 s).
	Trigger pool.Duration `yaml:"trigger" json:"trigger"`
	// Plan is the plan step (1.7 s measured by make bench's replay).
	Plan pool.Duration `yaml:"plan" json:"plan"`
	// LaunchCold is EC2 RunInstances to a running instance (about 26 to
	// 29 s to SSH, EC2 launch-time measurements quoted in facts).
	LaunchCold pool.Duration `yaml:"launchCold" json:"launchCold"`
	// LaunchWarm is a warm-pool start to running (AWS: warm-pool
	// instances serve in "as low as 30 s" including the application).
	LaunchWarm pool.Duration `yaml:"launchWarm" json:"launchWarm"`
	// Register is the SSM agent's registration after boot (60 to 120 s
	// and more; Systems Manager troubleshooting guide): the middle.
	Register pool.Duration `yaml:"register" json:"register"`
	// Deploy is installing and starting the media server by Run Command.
	// Today's deploy document builds nginx with its RTMP module from
	// source: about three minutes on a c7g.xlarge (assumed from the
	// build's size); a golden image makes it seconds.
	Deploy pool.Duration `yaml:"deploy" json:"deploy"`
	// HealthCheck is how long a load balancer takes to mark a new target
	// healthy (ALB/NLB: at least 2 checks of at least 5 s), the peers'
	// entry into service.
	HealthCheck pool.Duration `yaml:"healthCheck" json:"healthCheck"`
	// SessionLifetime is the mean length of a session (exponential): how
	// fast a draining node empties. Assumed 20 minutes for live viewing.
	SessionLifetime pool.Duration `yaml:"sessionLifetime" json:"sessionLifetime"`
	// PodGrace is how long a Kubernetes pod's sessions get between
	// SIGTERM and SIGKILL (terminationGracePeriodSeconds, default 30 s).
	PodGrace pool.Duration `yaml:"podGrace" json:"podGrace"`
	// CapacityFailureRate is the share of launches that fail with
	// InsufficientInstanceCapacity; each failure costs CapacityRetry
	// before the next instance type is tried.
	CapacityFailureRate float64       `yaml:"capacityFailureRate" json:"capacityFailureRate"`
	CapacityRetry       pool.Duration `yaml:"capacityRetry" json:"capacityRetry"`
	// Seed makes the failures and everything else random repeatable.
	Seed uint64 `yaml:"seed" json:"seed"`
	// What one scale event costs mediascale on Step Functions and Lambda
	// (make bench's replay: 25 transitions and 10 invocations per node,
	// about 5 and 3 per execution).
	TransitionsPerNode      float64 `yaml:"transitionsPerNode" json:"transitionsPerNode"`
	TransitionsPerExecution float64 `yaml:"transitionsPerExecution" json:"transitionsPerExecution"`
	InvocationsPerNode      float64 `yaml:"invocationsPerNode" json:"invocationsPerNode"`
	InvocationsPerExecution float64 `yaml:"invocationsPerExecution" json:"invocationsPerExecution"`
}

// DefaultModel is the model with every figure at its default.
func DefaultModel() Model {
	s := func(n int) pool.Duration { return pool.Duration(time.Duration(n) * time.Second) }
	return Model{
		Step: s(10), Trigger: s(1), Plan: pool.Duration(1700 * time.Millisecond),
		LaunchCold: s(28), LaunchWarm: s(20), Register: s(90), Deploy: s(180),
		HealthCheck: s(10), SessionLifetime: s(20 * 60), PodGrace: s(30),
		CapacityFailureRate: 0, CapacityRetry: s(10), Seed: 1,
		TransitionsPerNode: 25, TransitionsPerExecution: 5, InvocationsPerNode: 10, InvocationsPerExecution: 3,
	}
}

// LoadModel reads a model file over the defaults: fields it leaves out
// keep their default.
func LoadModel(r io.Reader) (Model, error) {
	m := DefaultModel()
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return m, fmt.Errorf("reading the model: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && err != io.EOF {
		return m, fmt.Errorf("model file: %w", err)
	}
	return m, m.check()
}

func (m Model) check() error {
	switch {
	case m.Step.D() < time.Second || m.Step.D() > time.Minute:
		return fmt.Errorf("model step %s: must be 1s to 1m", m.Step)
	case m.CapacityFailureRate < 0 || m.CapacityFailureRate >= 1:
		return fmt.Errorf("model capacityFailureRate %g: must be at least 0 and below 1", m.CapacityFailureRate)
	case m.SessionLifetime.D() <= 0:
		return fmt.Errorf("model sessionLifetime must be positive")
	}
	for name, d := range map[string]pool.Duration{"trigger": m.Trigger, "plan": m.Plan, "launchCold": m.LaunchCold, "launchWarm": m.LaunchWarm,
		"register": m.Register, "deploy": m.Deploy, "healthCheck": m.HealthCheck, "podGrace": m.PodGrace, "capacityRetry": m.CapacityRetry} {
		if d < 0 || d.D() > 24*time.Hour {
			return fmt.Errorf("model %s %s: must be from 0 to 24h", name, d)
		}
	}
	return nil
}

// Leads are how long after the controller's decision a node of the pool
// takes its first traffic (its first shift step, right after its probe):
// launched cold, and started from the warm pool.
func (m Model) Leads(p pool.Pool) (cold, warm time.Duration) {
	return m.coldLead(p), m.warmLead(p)
}

// coldLead is how long a cold node takes from the decision to passing its
// probe, before any traffic.
func (m Model) coldLead(p pool.Pool) time.Duration {
	return m.Trigger.D() + m.Plan.D() + m.LaunchCold.D() + m.Register.D() + m.Deploy.D() + p.Probe.Interval.D()
}

// warmLead is the same for a node started from the warm pool: it is
// registered and deployed already.
func (m Model) warmLead(p pool.Pool) time.Duration {
	return m.Trigger.D() + m.Plan.D() + m.LaunchWarm.D() + p.Probe.Interval.D()
}
