package pool

import "fmt"

// Direction is which way an alarm asks the pool to move.
type Direction string

// Directions.
const (
	ScaleOut Direction = "out"
	ScaleIn  Direction = "in"
)

// Metric is what an alarm watches.
type Metric string

// Metrics each pool alarms on, in both directions.
const (
	MetricCPU         Metric = "cpu"
	MetricConnections Metric = "connections"
	MetricBandwidth   Metric = "bandwidth"
)

// Metrics lists every metric a pool alarms on.
var Metrics = []Metric{MetricCPU, MetricConnections, MetricBandwidth}

// AlarmRef says which pool an alarm belongs to and which way it scales.
type AlarmRef struct {
	Pool      string
	Direction Direction
	Metric    Metric
}

// AlarmName is the one place that names a scaling alarm. The CDK app
// creates alarms with it and the trigger maps an alarm back to its pool
// through AlarmIndex, so neither side parses names.
func AlarmName(env, pool string, dir Direction, m Metric) string {
	return fmt.Sprintf("%s%s-%s", AlarmPrefix(env, pool), dir, m)
}

// AlarmPrefix begins the name of every scaling alarm of one pool.
func AlarmPrefix(env, pool string) string {
	return fmt.Sprintf("mediascale-%s-%s-scale-", env, pool)
}

// AlarmIndex maps every scaling alarm of the environment to its pool and
// direction.
func (f File) AlarmIndex() map[string]AlarmRef {
	idx := make(map[string]AlarmRef, len(f.Pools)*len(Metrics)*2)
	for _, p := range f.Pools {
		for _, dir := range []Direction{ScaleOut, ScaleIn} {
			for _, m := range Metrics {
				idx[AlarmName(f.Environment, p.Name, dir, m)] = AlarmRef{Pool: p.Name, Direction: dir, Metric: m}
			}
		}
	}
	return idx
}

// AlarmSpec is one scaling alarm as deployed: the stack creates it from
// this, and the simulator evaluates the same alarm.
type AlarmSpec struct {
	// MetricName is the agent's CloudWatch metric (Connections, ...).
	MetricName string
	// What says what the threshold counts, for the description.
	What              string
	Threshold         float64
	Period            Duration
	EvaluationPeriods int
	// Comparison is GreaterThanThreshold (scale-out) or
	// LessThanThreshold (scale-in).
	Comparison string
	// TreatMissingData: scale-out treats missing data as not breaching;
	// scale-in leaves it missing, so the alarm goes INSUFFICIENT_DATA and
	// the pool holds its capacity rather than shrinking blind.
	TreatMissingData string
}

// Alarm describes the pool's scaling alarm for one direction and metric.
func (p Pool) Alarm(dir Direction, m Metric) AlarmSpec {
	t, op, missing := p.Alarms.ScaleOut, "GreaterThanThreshold", "notBreaching"
	if dir == ScaleIn {
		t, op, missing = p.Alarms.ScaleIn, "LessThanThreshold", "missing"
	}
	s := AlarmSpec{Period: t.Period, EvaluationPeriods: t.EvaluationPeriods, Comparison: op, TreatMissingData: missing}
	switch m {
	case MetricCPU:
		s.MetricName, s.What, s.Threshold = "CPUPercent", "CPU % per node", t.CPUPercent
	case MetricConnections:
		s.MetricName, s.What, s.Threshold = "Connections", "connections per node", t.ConnectionsPerNode
	case MetricBandwidth:
		s.MetricName, s.What, s.Threshold = "BandwidthMbps", "Mbit/s per node", t.BandwidthMbpsPerNode
	}
	return s
}
