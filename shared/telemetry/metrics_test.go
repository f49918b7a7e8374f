package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// checkEMF decodes one log line and enforces the embedded metric format
// rules CloudWatch Logs applies before it extracts anything: a root _aws
// object with a millisecond Timestamp, every dimension of every set a
// string at the root, and every metric a number at the root. It returns
// the decoded line.
func checkEMF(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("metrics line is not JSON: %v\n%s", err, line)
	}
	meta, ok := doc["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws object at the root: %s", line)
	}
	if _, ok := meta["Timestamp"].(float64); !ok {
		t.Fatalf("_aws.Timestamp is not a number: %s", line)
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics is not a non-empty array: %s", line)
	}
	for _, d := range directives {
		dir := d.(map[string]any)
		if dir["Namespace"] != Namespace {
			t.Errorf("namespace %v, want %s", dir["Namespace"], Namespace)
		}
		for _, set := range dir["Dimensions"].([]any) {
			for _, name := range set.([]any) {
				if _, ok := doc[name.(string)].(string); !ok {
					t.Errorf("dimension %v has no string value at the root: %s", name, line)
				}
			}
		}
		for _, m := range dir["Metrics"].([]any) {
			name := m.(map[string]any)["Name"].(string)
			if _, ok := doc[name].(float64); !ok {
				t.Errorf("metric %s has no number at the root: %s", name, line)
			}
		}
	}
	return doc
}

func TestEmitMetricsWritesADocumentCloudWatchExtracts(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	err := EmitMetrics(context.Background(), NewLogger(&buf, "release"), at,
		[]Dimension{{"Pool", "live"}, {"Direction", "out"}},
		[][]string{{"Pool", "Direction"}, {"Direction"}},
		Metric{Name: "ScaleEvents", Value: 1, Unit: Count}, Metric{Name: "ScaleSeconds", Value: 41.5, Unit: Seconds, HighResolution: true})
	if err != nil {
		t.Fatal(err)
	}
	doc := checkEMF(t, bytes.TrimSpace(buf.Bytes()))
	if got := doc["_aws"].(map[string]any)["Timestamp"].(float64); int64(got) != at.UnixMilli() {
		t.Errorf("Timestamp %v, want %d", got, at.UnixMilli())
	}
	if doc["ScaleSeconds"] != 41.5 || doc["Pool"] != "live" || doc["function"] != "release" {
		t.Errorf("values or log fields lost: %v", doc)
	}
	defs := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Metrics"].([]any)
	if defs[0].(map[string]any)["StorageResolution"] != nil || defs[1].(map[string]any)["StorageResolution"] != float64(1) {
		t.Errorf("storage resolutions %v, want the default for ScaleEvents and 1 for ScaleSeconds", defs)
	}
}

func TestEmitMetricsRefusesASetNamingAMissingDimension(t *testing.T) {
	var buf bytes.Buffer
	err := EmitMetrics(context.Background(), NewLogger(&buf, "x"), time.Now(),
		[]Dimension{{"Pool", "live"}}, [][]string{{"Pool", "Step"}}, Metric{Name: "StepErrors", Value: 0, Unit: Count})
	if err == nil || !strings.Contains(err.Error(), `"Step"`) {
		t.Fatalf("want an error naming Step, got %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("a refused document was still written: %s", buf.String())
	}
}
