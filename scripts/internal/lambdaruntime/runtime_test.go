package lambdaruntime

import (
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildFunction compiles testdata/fn as a bootstrap in a fresh folder.
func buildFunction(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "bootstrap"), "./testdata/fn")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building test function: %v\n%s", err, out)
	}
	return dir
}

func testFunction(dir string) Function {
	return Function{
		Name: "fn", ARN: "arn:aws:lambda:us-east-1:123456789012:function:fn", Dir: dir,
		Env: map[string]string{"GREETING": "hello"}, Timeout: 2 * time.Second, MemoryMB: 128,
	}
}

func TestRuntimeReportsLikeLambda(t *testing.T) {
	dir := buildFunction(t)
	rt := New(map[string]string{"AWS_REGION": "us-east-1"}, io.Discard)
	defer rt.Close()
	fn := testFunction(dir)
	cases := []struct {
		name      string
		payload   string
		failed    bool
		errorType string
		message   string
	}{
		{"a successful call returns the handler's answer", `{"mode":"echo"}`, false, "", `"env":"hello"`},
		{"a named Go error reaches the caller as its type name", `{"mode":"named-error"}`, true, "InvalidInput", "checking input: field x is missing"},
		{"a wrapped error that skipped ForStateMachine arrives as wrapError", `{"mode":"wrapped-error"}`, true, "wrapError", "checking input: field x is missing"},
		{"a plain error reaches the caller as errorString", `{"mode":"plain-error"}`, true, "errorString", "boom"},
		{"a panic is reported with the panic's type", `{"mode":"panic"}`, true, "string", "kaboom"},
		{"the call after a panic gets a fresh sandbox", `{"mode":"echo"}`, false, "", `"mode":"echo"`},
		{"a second panic is reported alike", `{"mode":"panic"}`, true, "string", "kaboom"},
		{"an overrun is killed and reported as a sandbox timeout", `{"mode":"sleep","ms":5000}`, true, "Sandbox.Timedout", "Task timed out after 2.00 seconds"},
		{"the next call after a timeout gets a fresh sandbox", `{"mode":"echo"}`, false, "", `"mode":"echo"`},
		{"a process exit is reported as Runtime.ExitError", `{"mode":"exit"}`, true, "Runtime.ExitError", "exit status 7"},
		{"a malformed payload is the runtime's unmarshal error", `{"mode":`, true, "errorString", "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rt.Invoke(context.Background(), fn, []byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if (res.FunctionError != "") != tc.failed || res.ErrorType() != tc.errorType {
				t.Fatalf("FunctionError=%q errorType=%q payload=%s", res.FunctionError, res.ErrorType(), res.Payload)
			}
			if !strings.Contains(string(res.Payload), tc.message) {
				t.Fatalf("payload %s does not contain %q", res.Payload, tc.message)
			}
			if !strings.Contains(string(res.Logs), "REPORT RequestId: "+res.RequestID) {
				t.Fatalf("logs have no REPORT line: %s", res.Logs)
			}
		})
	}
}

func TestWarmProcessKeepsStateAndHonoursEnvironment(t *testing.T) {
	dir := buildFunction(t)
	rt := New(nil, io.Discard)
	defer rt.Close()
	fn := testFunction(dir)
	first, err := rt.Invoke(context.Background(), fn, []byte(`{"mode":"echo"}`))
	if err != nil {
		t.Fatal(err)
	}
	if first.InitDuration <= 0 {
		t.Fatal("the first call was not reported as a cold start")
	}
	second, _ := rt.Invoke(context.Background(), fn, []byte(`{"mode":"echo"}`))
	if second.InitDuration != 0 {
		t.Fatal("the second call was reported as a cold start")
	}
	var out struct {
		Function string `json:"function"`
		HasHome  bool   `json:"hasHome"`
		Deadline int64  `json:"deadlineMs"`
	}
	if err := json.Unmarshal(second.Payload, &out); err != nil {
		t.Fatal(err)
	}
	if out.Function != "fn|"+fn.ARN {
		t.Fatalf("function identity = %q", out.Function)
	}
	if out.HasHome {
		t.Fatal("the host's HOME leaked into the function environment")
	}
	if out.Deadline <= 0 || out.Deadline > 2000 {
		t.Fatalf("deadline in %d ms, want within the 2 s timeout", out.Deadline)
	}
	fn.Env = map[string]string{"GREETING": "changed"}
	third, _ := rt.Invoke(context.Background(), fn, []byte(`{"mode":"echo"}`))
	if third.InitDuration <= 0 || !strings.Contains(string(third.Payload), `"env":"changed"`) {
		t.Fatalf("a changed configuration did not get a fresh sandbox: %s", third.Payload)
	}
}

func TestInitFailureIsReported(t *testing.T) {
	dir := buildFunction(t)
	rt := New(map[string]string{"FAIL_INIT": "1"}, io.Discard)
	defer rt.Close()
	res, err := rt.Invoke(context.Background(), testFunction(dir), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorType() != "Runtime.ExitError" || !strings.Contains(string(res.Payload), "exit status 3") {
		t.Fatalf("init failure reported as %s", res.Payload)
	}
	if !strings.Contains(string(res.Logs), "init failing on purpose") {
		t.Fatalf("init output missing from logs: %s", res.Logs)
	}
}
