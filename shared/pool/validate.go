package pool

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	envNamePattern      = regexp.MustCompile(`^[a-z][a-z0-9]{1,15}$`)
	poolNamePattern     = regexp.MustCompile(`^[a-z][a-z0-9-]{2,38}[a-z0-9]$`)
	regionPattern       = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
	subnetPattern       = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	launchTemplateID    = regexp.MustCompile(`^lt-[0-9a-f]{8,17}$`)
	instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	versionPattern      = regexp.MustCompile(`^[1-9][0-9]*$`)
	hostedZonePattern   = regexp.MustCompile(`^[0-9A-Z]{1,32}$`)
	targetGroupPattern  = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]+/[0-9a-f]+$`)
	listenerPattern     = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/(app|net)/[A-Za-z0-9-]+/[0-9a-f]+/[0-9a-f]+$`)
	documentPattern     = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,128}$`)
	classPattern        = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	appPattern          = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Validate checks every rule that YAML decoding cannot: ranges, orderings,
// formats and cross-field constraints. It reports all broken rules at once.
func (f File) Validate() error {
	v := &validator{}
	if !envNamePattern.MatchString(f.Environment) {
		v.add("environment", "must be 2-16 lowercase letters or digits starting with a letter, got %q", f.Environment)
	}
	if len(f.Pools) == 0 {
		v.add("pools", "must list at least one pool")
	}
	if b := f.Budget; b != nil {
		if b.VCPUs < 0 || b.Nodes < 0 || b.VCPUs == 0 && b.Nodes == 0 {
			v.add("budget", "must set vcpus, nodes or both, each above zero, got vcpus %d and nodes %d", b.VCPUs, b.Nodes)
		}
		if b.VCPUs > 0 {
			for i, p := range f.Pools {
				for j, t := range p.InstanceTypes {
					if _, ok := VCPUsOf(t); !ok {
						v.add(fmt.Sprintf("pools[%d].instanceTypes[%d]", i, j), "%s: its vCPUs are not known, so budget.vcpus cannot count it (sizes medium to 48xlarge)", t)
					}
				}
			}
		}
	}
	names := map[string]int{}
	for i, p := range f.Pools {
		at := fmt.Sprintf("pools[%d]", i)
		if first, dup := names[p.Name]; dup {
			v.add(at+".name", "duplicate pool name %q (also pools[%d])", p.Name, first)
		} else {
			names[p.Name] = i
		}
		v.pool(at, p)
	}
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}

type validator struct{ errs Errors }

func (v *validator) add(path, rule string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Rule: fmt.Sprintf(rule, args...)})
}

func (v *validator) pool(at string, p Pool) {
	if !poolNamePattern.MatchString(p.Name) {
		v.add(at+".name", "must be 4-40 lowercase letters, digits or dashes, got %q", p.Name)
	}
	switch p.Media {
	case MediaRTMP, MediaSFU, MediaVoice:
	default:
		v.add(at+".media", "must be one of rtmp, sfu, voice, got %q", p.Media)
	}
	if p.Priority < 0 {
		v.add(at+".priority", "must not be negative, got %d", p.Priority)
	}
	if !regionPattern.MatchString(p.Region) {
		v.add(at+".region", "must be an AWS region such as ap-southeast-1, got %q", p.Region)
	}
	v.placement(at+".placement", p.Region, p.Placement)
	v.launchTemplate(at+".launchTemplate", p.LaunchTemplate)
	v.instanceTypes(at+".instanceTypes", p.InstanceTypes)
	v.capacity(at+".capacity", p.Capacity)
	v.deploy(at+".deploy", p.Deploy)
	v.probe(at+".probe", p.Media, p.Probe)
	v.traffic(at+".traffic", p.Traffic)
	v.thresholds(at+".alarms.scaleOut", p.Alarms.ScaleOut)
	v.thresholds(at+".alarms.scaleIn", p.Alarms.ScaleIn)
	v.alarmOrder(at+".alarms", p.Alarms)
	v.positive(at+".cooldowns.scaleOut", p.Cooldowns.ScaleOut)
	v.positive(at+".cooldowns.scaleIn", p.Cooldowns.ScaleIn)
	if p.Cooldowns.ScaleIn < p.Cooldowns.ScaleOut {
		v.add(at+".cooldowns.scaleIn", "must be at least cooldowns.scaleOut (%s < %s): scale-in waits longer than scale-out", p.Cooldowns.ScaleIn, p.Cooldowns.ScaleOut)
	}
	v.positive(at+".drain.timeout", p.Drain.Timeout)
	if p.Drain.ConnectionThreshold < 0 {
		v.add(at+".drain.connectionThreshold", "must not be negative, got %d", p.Drain.ConnectionThreshold)
	}
	v.control(at+".control", p.Control)
	if p.Agent.Interval != 0 && (p.Agent.Interval.D() < time.Second || p.Agent.Interval.D() > 5*time.Minute) {
		v.add(at+".agent.interval", "must be between 1s and 5m, got %s", p.Agent.Interval)
	}
	v.admission(at+".admission", p)
	v.shows(at+".shows", p.Shows)
	if f := p.Healing.Failures; f < 0 || f > 10 {
		v.add(at+".healing.failures", "must be between 1 and 10, got %d", f)
	}
	if m := p.Healing.MaxReplacementsPerHour; m < 0 || m > 100 {
		v.add(at+".healing.maxReplacementsPerHour", "must be between 1 and 100, got %d", m)
	}
}

// MaxShowPeak bounds a show's expected sessions: a typo of three zeros
// must not ask for every node the pool may have.
const MaxShowPeak = 100_000_000

// shows checks the pool's recurring shows: each named once, on known
// days, at a valid time, with a peak and a ramp of at most an hour.
func (v *validator) shows(at string, shows []Show) {
	seen := map[string]bool{}
	for i, s := range shows {
		here := fmt.Sprintf("%s[%d]", at, i)
		if !poolNamePattern.MatchString(s.Name) {
			v.add(here+".name", "must be 4-40 lowercase letters, digits or dashes, got %q", s.Name)
		} else if seen[s.Name] {
			v.add(here+".name", "show %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		if _, err := time.Parse("15:04", s.Start); err != nil || len(s.Start) != 5 {
			v.add(here+".start", "must be a time of day HH:MM in UTC, got %q", s.Start)
		}
		days := map[string]bool{}
		for j, d := range s.Days {
			if !slices.Contains(Weekdays, d) {
				v.add(fmt.Sprintf("%s.days[%d]", here, j), "must be one of %s, got %q", strings.Join(Weekdays, ", "), d)
			} else if days[d] {
				v.add(fmt.Sprintf("%s.days[%d]", here, j), "%s is listed twice", d)
			}
			days[d] = true
		}
		if s.Peak < 1 || s.Peak > MaxShowPeak {
			v.add(here+".peak", "must be between 1 and %d sessions, got %d", MaxShowPeak, s.Peak)
		}
		if s.Ramp < 0 || s.Ramp.D() > time.Hour {
			v.add(here+".ramp", "must be between 0 and 1h, got %s", s.Ramp)
		}
	}
}

// admission checks the dispatcher's classes: each named once, each ceiling
// one the media server can reach.
func (v *validator) admission(at string, p Pool) {
	a := p.Admission
	if a.RetryAfter != 0 && (a.RetryAfter.D() < time.Second || a.RetryAfter.D() > 10*time.Minute) {
		v.add(at+".retryAfter", "must be between 1s and 10m, got %s", a.RetryAfter)
	}
	limit := p.limitPercent()
	seen := map[string]int{}
	for i, c := range a.Classes {
		ca := fmt.Sprintf("%s.classes[%d]", at, i)
		if !classPattern.MatchString(c.Name) {
			v.add(ca+".name", "must be 1-31 lowercase letters, digits or dashes starting with a letter, got %q", c.Name)
		}
		if first, dup := seen[c.Name]; dup {
			v.add(ca+".name", "duplicate class %q (also classes[%d])", c.Name, first)
		} else {
			seen[c.Name] = i
		}
		switch {
		case c.CeilingPercent <= 0:
			v.add(ca+".ceilingPercent", "must be above 0, got %g", c.CeilingPercent)
		case p.AdmissionLimit() > 0 && c.CeilingPercent > limit+1e-9:
			v.add(ca+".ceilingPercent", "must be at most %.4g: the media server admits %g sessions a node (deploy.parameters.maxConnections), %.4g%% of alarms.scaleOut.connectionsPerNode; got %g",
				limit, p.AdmissionLimit(), limit, c.CeilingPercent)
		case c.CeilingPercent > 200:
			v.add(ca+".ceilingPercent", "must be at most 200, got %g", c.CeilingPercent)
		}
	}
	named := map[Fallback]int{}
	for i, f := range a.Fallbacks {
		fa := fmt.Sprintf("%s.fallbacks[%d]", at, i)
		switch {
		case !regionPattern.MatchString(f.Region):
			v.add(fa+".region", "must be an AWS region such as eu-west-1, got %q", f.Region)
		case f.Region == p.Region:
			v.add(fa+".region", "must be another region than the pool's own (%s): a fallback takes the sessions a region cannot", p.Region)
		}
		if !envNamePattern.MatchString(f.Environment) {
			v.add(fa+".environment", "must be an environment name (2-16 lowercase letters or digits starting with a letter), got %q", f.Environment)
		}
		if !poolNamePattern.MatchString(f.Pool) {
			v.add(fa+".pool", "must be a pool name, got %q", f.Pool)
		}
		if first, dup := named[f]; dup {
			v.add(fa, "names %s again (also fallbacks[%d])", f, first)
		} else {
			named[f] = i
		}
	}
}

// control checks the controller's settings; zero means the default.
func (v *validator) control(at string, c Control) {
	if c.TargetPercent < 0 || c.TargetPercent > 100 {
		v.add(at+".targetPercent", "must be above 0 and at most 100, got %g", c.TargetPercent)
	}
	if c.TolerancePercent < 0 || c.TolerancePercent > 50 {
		v.add(at+".tolerancePercent", "must be between 0 and 50, got %g", c.TolerancePercent)
	}
	if c.MaxGrowthPercent < 0 || c.MaxGrowthPercent > 1000 {
		v.add(at+".maxGrowthPercent", "must be between 1 and 1000, got %d", c.MaxGrowthPercent)
	}
	if c.MaxShrinkPercent < 0 || c.MaxShrinkPercent > 100 {
		v.add(at+".maxShrinkPercent", "must be between 1 and 100, got %d", c.MaxShrinkPercent)
	}
	if c.ScaleInWindow < 0 || c.ScaleInWindow.D() > 24*time.Hour {
		v.add(at+".scaleInWindow", "must be between 1s and 24h, got %s", c.ScaleInWindow)
	}
}

func (v *validator) placement(at, region string, ps []Placement) {
	if len(ps) == 0 {
		v.add(at, "must list at least one availability zone and subnet")
	}
	subnets := map[string]bool{}
	for i, pl := range ps {
		p := fmt.Sprintf("%s[%d]", at, i)
		if !strings.HasPrefix(pl.AZ, region) || len(pl.AZ) <= len(region) {
			v.add(p+".az", "must be a zone of region %s such as %sa, got %q", region, region, pl.AZ)
		}
		if pl.Subnet != Managed && !subnetPattern.MatchString(pl.Subnet) {
			v.add(p+".subnet", "must be a subnet id such as subnet-0123456789abcdef0 or \"managed\", got %q", pl.Subnet)
		}
		if pl.Subnet != Managed && subnets[pl.Subnet] {
			v.add(p+".subnet", "subnet %s is listed twice", pl.Subnet)
		}
		subnets[pl.Subnet] = true
	}
}

func (v *validator) launchTemplate(at string, lt LaunchTemplate) {
	if lt.ID != Managed && !launchTemplateID.MatchString(lt.ID) {
		v.add(at+".id", "must be a launch template id such as lt-0123456789abcdef0 or \"managed\", got %q", lt.ID)
	}
	switch {
	case lt.Version == "$Latest" || lt.Version == "$Default":
		v.add(at+".version", "must be a numbered version, not %s: a template change must not reach the pool without a config change", lt.Version)
	case !versionPattern.MatchString(lt.Version):
		v.add(at+".version", "must be a positive version number, got %q", lt.Version)
	}
}

func (v *validator) instanceTypes(at string, types []string) {
	if len(types) == 0 {
		v.add(at, "must list at least one instance type, most preferred first")
	}
	seen := map[string]bool{}
	for i, t := range types {
		if !instanceTypePattern.MatchString(t) {
			v.add(fmt.Sprintf("%s[%d]", at, i), "must be an instance type such as c7gn.xlarge, got %q", t)
		}
		if seen[t] {
			v.add(fmt.Sprintf("%s[%d]", at, i), "instance type %s is listed twice", t)
		}
		seen[t] = true
	}
}

func (v *validator) capacity(at string, c Capacity) {
	if c.Min < 0 {
		v.add(at+".min", "must not be negative, got %d", c.Min)
	}
	if c.Max < 1 {
		v.add(at+".max", "must be at least 1, got %d", c.Max)
	}
	if c.Min > c.Max {
		v.add(at+".min", "must not exceed capacity.max (%d > %d)", c.Min, c.Max)
	}
	if c.ScaleOutStep < 1 {
		v.add(at+".scaleOutStep", "must be at least 1, got %d", c.ScaleOutStep)
	}
	if c.ScaleInStep < 1 {
		v.add(at+".scaleInStep", "must be at least 1, got %d", c.ScaleInStep)
	}
	if c.ScaleInStep > c.ScaleOutStep {
		v.add(at+".scaleInStep", "must not exceed capacity.scaleOutStep (%d > %d): scale-in takes fewer nodes at once", c.ScaleInStep, c.ScaleOutStep)
	}
	if c.WarmPool < 0 {
		v.add(at+".warmPool", "must not be negative, got %d", c.WarmPool)
	}
	if c.WarmPool > c.Max {
		v.add(at+".warmPool", "must not exceed capacity.max (%d > %d)", c.WarmPool, c.Max)
	}
}

func (v *validator) deploy(at string, d Deploy) {
	if !documentPattern.MatchString(d.Document) {
		v.add(at+".document", "must be an SSM document name (3-128 of A-Z a-z 0-9 _ . -), got %q", d.Document)
	}
	for k := range d.Parameters {
		if k == "" {
			v.add(at+".parameters", "parameter names must not be empty")
		}
	}
	v.positive(at+".timeout", d.Timeout)
}

func (v *validator) probe(at, media string, p Probe) {
	if !strings.HasPrefix(p.HealthPath, "/") {
		v.add(at+".healthPath", "must start with /, got %q", p.HealthPath)
	}
	v.port(at+".healthPort", p.HealthPort)
	v.port(at+".mediaPort", p.MediaPort)
	switch p.Handshake {
	case HandshakeRTMP, HandshakeTCP:
	default:
		v.add(at+".handshake", "must be rtmp or tcp, got %q", p.Handshake)
	}
	if media == MediaRTMP && p.Handshake != HandshakeRTMP {
		v.add(at+".handshake", "must be rtmp for an rtmp pool, got %q", p.Handshake)
	}
	v.positive(at+".timeout", p.Timeout)
	v.positive(at+".maxLatency", p.MaxLatency)
	if p.MaxLatency > p.Timeout {
		v.add(at+".maxLatency", "must not exceed probe.timeout (%s > %s)", p.MaxLatency, p.Timeout)
	}
	if p.Attempts < 1 || p.Attempts > 20 {
		v.add(at+".attempts", "must be between 1 and 20, got %d", p.Attempts)
	}
	v.positive(at+".interval", p.Interval)
	if s := p.Session; s != nil {
		if p.Handshake != HandshakeRTMP {
			v.add(at+".session", "needs handshake rtmp: the synthetic session publishes and plays an RTMP stream")
		}
		if !appPattern.MatchString(s.App) {
			v.add(at+".session.app", "must be an application name (letters, digits, dashes, underscores), got %q", s.App)
		}
		v.positive(at+".session.maxTimeToFirstMedia", s.MaxTimeToFirstMedia)
		if s.MaxTimeToFirstMedia >= p.Timeout {
			v.add(at+".session.maxTimeToFirstMedia", "must be below probe.timeout (%s >= %s): the session's connections share the timeout", s.MaxTimeToFirstMedia, p.Timeout)
		}
	}
}

func (v *validator) traffic(at string, t Traffic) {
	switch t.Mode {
	case TrafficRoute53:
		if t.Route53 == nil {
			v.add(at+".route53", "required field is missing: mode route53 needs hostedZoneId, recordName and ttl")
		}
		if t.LoadBalancer != nil {
			v.add(at+".loadBalancer", "must not be set when mode is route53")
		}
	case TrafficALB, TrafficNLB:
		if t.LoadBalancer == nil {
			v.add(at+".loadBalancer", "required field is missing: mode %s needs targetGroupArn and port", t.Mode)
		}
		if t.Route53 != nil {
			v.add(at+".route53", "must not be set when mode is %s", t.Mode)
		}
	default:
		v.add(at+".mode", "must be one of route53, alb, nlb, got %q", t.Mode)
	}
	if r := t.Route53; r != nil {
		if r.HostedZoneID != Managed && !hostedZonePattern.MatchString(r.HostedZoneID) {
			v.add(at+".route53.hostedZoneId", "must be a hosted zone id such as Z0123456789ABCDEFGHIJ or \"managed\", got %q", r.HostedZoneID)
		}
		if r.RecordName == "" || strings.ContainsAny(r.RecordName, " /") {
			v.add(at+".route53.recordName", "must be a DNS name, got %q", r.RecordName)
		}
		if r.TTL < 1 || r.TTL > 60 {
			v.add(at+".route53.ttl", "must be between 1 and 60 seconds so weight changes take effect quickly, got %d", r.TTL)
		}
	}
	if lb := t.LoadBalancer; lb != nil {
		if lb.ListenerArn != Managed && !listenerPattern.MatchString(lb.ListenerArn) {
			v.add(at+".loadBalancer.listenerArn", "must be a listener ARN or \"managed\", got %q", lb.ListenerArn)
		}
		if lb.TargetGroupArn != Managed && !targetGroupPattern.MatchString(lb.TargetGroupArn) {
			v.add(at+".loadBalancer.targetGroupArn", "must be a target group ARN or \"managed\", got %q", lb.TargetGroupArn)
		}
		if lb.CanaryTargetGroupArn != Managed && !targetGroupPattern.MatchString(lb.CanaryTargetGroupArn) {
			v.add(at+".loadBalancer.canaryTargetGroupArn", "must be a target group ARN or \"managed\", got %q", lb.CanaryTargetGroupArn)
		}
		if lb.CanaryTargetGroupArn == lb.TargetGroupArn && lb.TargetGroupArn != Managed {
			v.add(at+".loadBalancer.canaryTargetGroupArn", "must differ from targetGroupArn: shifted-in nodes need their own group")
		}
		if (lb.ListenerArn == Managed) != (lb.TargetGroupArn == Managed) || (lb.TargetGroupArn == Managed) != (lb.CanaryTargetGroupArn == Managed) {
			v.add(at+".loadBalancer", "listenerArn, targetGroupArn and canaryTargetGroupArn are either all \"managed\" or all ARNs")
		}
		v.port(at+".loadBalancer.port", lb.Port)
	}
	v.positive(at+".bake", t.Bake)
	if t.PressureBake < 0 {
		v.add(at+".pressureBake", "must not be negative, got %s", t.PressureBake)
	}
	v.guard(at+".guard", t.Guard)
	prev := 0
	for i, s := range t.Steps {
		p := fmt.Sprintf("%s.steps[%d]", at, i)
		if s.Percent < 1 || s.Percent > 100 {
			v.add(p+".percent", "must be between 1 and 100, got %d", s.Percent)
		} else if s.Percent <= prev {
			v.add(p+".percent", "must be greater than the step before (%d <= %d): steps ascend", s.Percent, prev)
		}
		prev = s.Percent
		if s.Bake < 0 {
			v.add(p+".bake", "must not be negative, got %s", s.Bake)
		}
		if s.Guard != nil {
			v.guard(p+".guard", *s.Guard)
		}
	}
	if len(t.Steps) > 0 && t.Steps[len(t.Steps)-1].Percent != 100 {
		v.add(fmt.Sprintf("%s.steps[%d].percent", at, len(t.Steps)-1), "the last step must be 100, got %d", t.Steps[len(t.Steps)-1].Percent)
	}
}

func (v *validator) guard(at string, g Guard) {
	if g.MaxCPUPercent <= 0 || g.MaxCPUPercent > 100 {
		v.add(at+".maxCpuPercent", "must be above 0 and at most 100, got %g", g.MaxCPUPercent)
	}
	if g.MaxConnectionsPerNode < 1 {
		v.add(at+".maxConnectionsPerNode", "must be at least 1, got %d", g.MaxConnectionsPerNode)
	}
	if g.MaxErrorRatePercent < 0 || g.MaxErrorRatePercent > 100 {
		v.add(at+".maxErrorRatePercent", "must be between 0 and 100, got %g", g.MaxErrorRatePercent)
	}
	for i, a := range g.Alarms {
		if strings.TrimSpace(a) == "" {
			v.add(fmt.Sprintf("%s.alarms[%d]", at, i), "must be an alarm name, got an empty one")
		}
	}
}

func (v *validator) thresholds(at string, t Thresholds) {
	if t.CPUPercent <= 0 || t.CPUPercent > 100 {
		v.add(at+".cpuPercent", "must be above 0 and at most 100, got %g", t.CPUPercent)
	}
	if t.ConnectionsPerNode < 0 {
		v.add(at+".connectionsPerNode", "must not be negative, got %g", t.ConnectionsPerNode)
	}
	if t.BandwidthMbpsPerNode < 0 {
		v.add(at+".bandwidthMbpsPerNode", "must not be negative, got %g", t.BandwidthMbpsPerNode)
	}
	if t.Period.D() < 10*time.Second || t.Period.D()%(10*time.Second) != 0 && t.Period.D()%time.Minute != 0 {
		v.add(at+".period", "must be 10s, 20s, 30s or a multiple of 60s, got %s", t.Period)
	}
	if t.EvaluationPeriods < 1 {
		v.add(at+".evaluationPeriods", "must be at least 1, got %d", t.EvaluationPeriods)
	}
}

// alarmOrder keeps the scale-in thresholds below the scale-out ones, so one
// load level can never fire both, and makes scale-in look over a longer
// window than scale-out.
func (v *validator) alarmOrder(at string, a Alarms) {
	if a.ScaleIn.CPUPercent >= a.ScaleOut.CPUPercent {
		v.add(at+".scaleIn.cpuPercent", "must be below alarms.scaleOut.cpuPercent (%g >= %g)", a.ScaleIn.CPUPercent, a.ScaleOut.CPUPercent)
	}
	if a.ScaleIn.ConnectionsPerNode >= a.ScaleOut.ConnectionsPerNode {
		v.add(at+".scaleIn.connectionsPerNode", "must be below alarms.scaleOut.connectionsPerNode (%g >= %g)", a.ScaleIn.ConnectionsPerNode, a.ScaleOut.ConnectionsPerNode)
	}
	if a.ScaleIn.BandwidthMbpsPerNode >= a.ScaleOut.BandwidthMbpsPerNode {
		v.add(at+".scaleIn.bandwidthMbpsPerNode", "must be below alarms.scaleOut.bandwidthMbpsPerNode (%g >= %g)", a.ScaleIn.BandwidthMbpsPerNode, a.ScaleOut.BandwidthMbpsPerNode)
	}
	out := a.ScaleOut.Period.D() * time.Duration(a.ScaleOut.EvaluationPeriods)
	in := a.ScaleIn.Period.D() * time.Duration(a.ScaleIn.EvaluationPeriods)
	if in <= out {
		v.add(at+".scaleIn", "must evaluate over a longer window than alarms.scaleOut (%s <= %s)", in, out)
	}
}

func (v *validator) positive(at string, d Duration) {
	if d < 0 {
		v.add(at, "must not be negative, got %s", d)
	} else if d == 0 {
		v.add(at, "must be greater than zero")
	}
}

func (v *validator) port(at string, p int) {
	if p < 1 || p > 65535 {
		v.add(at, "must be a port between 1 and 65535, got %d", p)
	}
}
