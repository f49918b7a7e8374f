// Package tracing is the one place that knows how mediascale traces: AWS
// X-Ray through aws-xray-sdk-go, for the Lambda functions. It is apart
// from package telemetry so the node agent, which logs and publishes
// metrics but never traces, does not carry X-Ray and the SDK v1 it pulls
// in. Swapping X-Ray for OpenTelemetry means changing this package only.
package tracing

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/xray"
	"github.com/aws/aws-xray-sdk-go/xraylog"
)

// Enabled reports whether an X-Ray daemon is there to receive segments.
// The Lambda service sets AWS_XRAY_DAEMON_ADDRESS when active tracing is
// on; the local cloud does not, and then tracing stays off instead of
// logging a failed send for every call.
func Enabled() bool { return os.Getenv("AWS_XRAY_DAEMON_ADDRESS") != "" }

// Instrument adds X-Ray subsegments to every AWS SDK call made with cfg,
// when tracing is enabled. A call outside a traced context is ignored
// rather than treated as an error.
func Instrument(cfg *aws.Config) {
	if !Enabled() {
		return
	}
	_ = xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()})
	xray.SetLogger(xraylog.NewDefaultLogger(os.Stderr, xraylog.LogLevelWarn))
	awsv2.AWSV2Instrumentor(&cfg.APIOptions)
}
