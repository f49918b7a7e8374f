package pool

import "testing"

// FuzzParseYAML: a pool file, however broken, is either refused with an
// error or validated into pools that every later step can rely on.
func FuzzParseYAML(f *testing.F) {
	// The seeds are small valid files, not the environments' own: the
	// fuzzer's speed falls with the size of its inputs (the 4 KB
	// environment files ran at a few hundred executions a second), and
	// these two use every kind of field those do. The environment files
	// are parsed by the unit tests.
	f.Add([]byte(smallRoute53Pool))
	f.Add([]byte(smallLoadBalancerPool))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := ParseYAML(raw)
		if err != nil {
			return
		}
		if file.Environment == "" || len(file.Pools) == 0 {
			t.Fatalf("accepted a file without environment or pools: %+v", file)
		}
		for _, p := range file.Pools {
			c := p.Capacity
			if c.Min < 0 || c.Min > c.Max || c.WarmPool < 0 || c.ScaleOutStep < 1 || len(p.Placement) == 0 || len(p.InstanceTypes) == 0 {
				t.Fatalf("accepted pool %q with capacity %+v, %d zones, %d types", p.Name, c, len(p.Placement), len(p.InstanceTypes))
			}
			_ = p.Revision()
			_ = p.ShiftSteps()
		}
	})
}

const smallRoute53Pool = `environment: dev
pools:
  - name: live
    media: rtmp
    region: us-east-1
    placement: [{az: us-east-1a, subnet: managed}]
    launchTemplate: {id: managed, version: "1"}
    instanceTypes: [c7g.large]
    capacity: {min: 1, max: 4, scaleOutStep: 1, scaleInStep: 1}
    deploy: {document: doc, timeout: 60s}
    probe: {healthPath: /h, healthPort: 8080, mediaPort: 1935, handshake: rtmp, timeout: 1s, maxLatency: 1s, attempts: 1, interval: 1s}
    traffic: {mode: route53, route53: {hostedZoneId: managed, recordName: a.b, ttl: 5}, bake: 1s, guard: {maxCpuPercent: 90, maxConnectionsPerNode: 10, maxErrorRatePercent: 1}}
    alarms:
      scaleOut: {cpuPercent: 70, connectionsPerNode: 10, bandwidthMbpsPerNode: 100, period: 60s, evaluationPeriods: 1}
      scaleIn: {cpuPercent: 10, connectionsPerNode: 1, bandwidthMbpsPerNode: 10, period: 300s, evaluationPeriods: 1}
    cooldowns: {scaleOut: 60s, scaleIn: 60s}
    drain: {timeout: 60s}
`

const smallLoadBalancerPool = `environment: dev
pools:
  - name: voice
    media: voice
    region: us-east-1
    placement: [{az: us-east-1a, subnet: managed}]
    launchTemplate: {id: managed, version: "1"}
    instanceTypes: [c7g.large]
    capacity: {min: 0, max: 4, scaleOutStep: 2, scaleInStep: 1, warmPool: 1}
    deploy: {document: doc, parameters: {rtmpPort: "1935"}, timeout: 60s}
    probe: {healthPath: /h, healthPort: 8080, mediaPort: 1935, handshake: tcp, timeout: 1s, maxLatency: 1s, attempts: 1, interval: 1s}
    traffic: {mode: nlb, loadBalancer: {listenerArn: managed, targetGroupArn: managed, canaryTargetGroupArn: managed, port: 1935}, bake: 1s, steps: [{percent: 50}, {percent: 100, bake: 2s}], guard: {maxCpuPercent: 90, maxConnectionsPerNode: 10, maxErrorRatePercent: 1}}
    alarms:
      scaleOut: {cpuPercent: 70, connectionsPerNode: 10, bandwidthMbpsPerNode: 100, period: 60s, evaluationPeriods: 1}
      scaleIn: {cpuPercent: 10, connectionsPerNode: 1, bandwidthMbpsPerNode: 10, period: 300s, evaluationPeriods: 1}
    cooldowns: {scaleOut: 60s, scaleIn: 60s}
    drain: {timeout: 60s}
`

// The seeds must be valid, or the fuzzer starts from refusals only.
func TestTheFuzzSeedsAreValidPoolFiles(t *testing.T) {
	for _, seed := range []string{smallRoute53Pool, smallLoadBalancerPool} {
		if _, err := ParseYAML([]byte(seed)); err != nil {
			t.Fatalf("seed refused: %v\n%s", err, seed)
		}
	}
}
