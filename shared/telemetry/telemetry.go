// Package telemetry is the one place that knows how mediascale logs and
// traces: structured JSON logs through log/slog, and AWS X-Ray through
// aws-xray-sdk-go. Swapping X-Ray for OpenTelemetry means changing this
// package only.
package telemetry

import (
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/xray"
	"github.com/aws/aws-xray-sdk-go/xraylog"
)

// Logger returns a JSON logger for one function. Every line carries the
// function name; callers add pool, node, step, result and duration.
func Logger(function string) *slog.Logger {
	return NewLogger(os.Stdout, function)
}

// NewLogger writes JSON lines to w.
func NewLogger(w io.Writer, function string) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("MEDIASCALE_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("function", function)
}

// TracingEnabled reports whether an X-Ray daemon is there to receive
// segments. The Lambda service sets AWS_XRAY_DAEMON_ADDRESS when active
// tracing is on; the local cloud does not, and then tracing stays off
// instead of logging a failed send for every call.
func TracingEnabled() bool { return os.Getenv("AWS_XRAY_DAEMON_ADDRESS") != "" }

// Instrument adds X-Ray subsegments to every AWS SDK call made with cfg,
// when tracing is enabled. A call outside a traced context is ignored
// rather than treated as an error.
func Instrument(cfg *aws.Config) {
	if !TracingEnabled() {
		return
	}
	_ = xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()})
	xray.SetLogger(xraylog.NewDefaultLogger(os.Stderr, xraylog.LogLevelWarn))
	awsv2.AWSV2Instrumentor(&cfg.APIOptions)
}
