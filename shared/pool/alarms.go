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
