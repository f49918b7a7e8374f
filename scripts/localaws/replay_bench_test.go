package main

import (
	"encoding/json"
	"testing"
)

// BenchmarkScaleOutReplay replays one scale-out of the live pool (two
// nodes, five shift steps) per iteration on a local cloud and reports
// what one added node costs: state transitions, Lambda invocations and
// billed Lambda milliseconds (plan, release and the trigger shared out,
// functions running under qemu on an amd64 machine), and the time from
// the alarm to the execution's end with waits capped at one second.
func BenchmarkScaleOutReplay(b *testing.B) {
	c := newCloud(b)
	var transitions, invocations, lambdaMs, nodes int
	var wall int64
	for i := 0; i < b.N; i++ {
		c.fresh()
		rs := c.replay(c.alarm())
		if rs.Status != "SUCCEEDED" {
			b.Fatalf("status %s", rs.Status)
		}
		var ns []json.RawMessage
		_ = json.Unmarshal(rs.Nodes, &ns)
		transitions += rs.Transitions
		invocations += rs.LambdaInvocations
		lambdaMs += rs.LambdaMs
		wall += rs.DurationMs
		nodes += len(ns)
	}
	b.ReportMetric(float64(transitions)/float64(nodes), "transitions/node")
	b.ReportMetric(float64(invocations)/float64(nodes), "invocations/node")
	b.ReportMetric(float64(lambdaMs)/float64(nodes), "lambda-ms/node")
	b.ReportMetric(float64(wall)/float64(b.N), "alarm-to-done-ms")
}
