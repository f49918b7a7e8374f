// Package telemetry is the one place that knows how mediascale logs and
// publishes metrics: structured JSON logs through log/slog, and CloudWatch
// embedded-metric lines. Tracing lives in package tracing beside it.
package telemetry

import (
	"io"
	"log/slog"
	"os"
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
