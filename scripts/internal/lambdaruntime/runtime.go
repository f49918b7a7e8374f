// Package lambdaruntime runs real Lambda bootstrap binaries on this machine
// through the Lambda Runtime API, the way the Lambda service does: one warm
// process per function, invocations handed out by GET .../invocation/next,
// answers taken from .../response and .../error, the function's timeout
// enforced by killing the process, and errors reported to the caller with
// the same errorType and X-Amz-Function-Error header Lambda sends.
package lambdaruntime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Function is what the runtime needs to know about a deployed function.
type Function struct {
	Name     string
	ARN      string
	Dir      string // folder holding the bootstrap binary
	Env      map[string]string
	Timeout  time.Duration
	MemoryMB int
	// Region is where the function is deployed; its logs and metrics go
	// there.
	Region string
}

// fingerprint changes whenever a redeploy would give the function a new
// sandbox, so a changed function gets a fresh process.
func (f Function) fingerprint() string {
	keys := make([]string, 0, len(f.Env))
	for k := range f.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%d|", f.Dir, f.Timeout, f.ARN, f.MemoryMB)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s;", k, f.Env[k])
	}
	if st, err := os.Stat(filepath.Join(f.Dir, "bootstrap")); err == nil {
		fmt.Fprintf(&b, "%d|%d", st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// Result is the outcome of one invocation as the Invoke API reports it.
type Result struct {
	RequestID string
	Payload   []byte
	// FunctionError is "Unhandled" when the function failed, timed out or
	// crashed, and empty on success, as in the X-Amz-Function-Error header.
	FunctionError string
	// Logs holds what the function printed during the invocation, framed
	// by START, END and REPORT lines.
	Logs     []byte
	Duration time.Duration
	// InitDuration is set on a cold start: from process start to the
	// first request for an invocation.
	InitDuration time.Duration
}

// ErrorType returns the errorType of a failed invocation's payload.
func (r Result) ErrorType() string {
	var body struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(r.Payload, &body)
	return body.ErrorType
}

// Runtime keeps one warm process per function.
type Runtime struct {
	baseEnv map[string]string
	logTo   io.Writer

	mu        sync.Mutex
	instances map[string]*instance
}

// New returns a runtime. baseEnv is given to every function before its own
// variables (credentials, region, AWS_ENDPOINT_URL of the local cloud);
// function output is copied to logTo with the function name in front.
func New(baseEnv map[string]string, logTo io.Writer) *Runtime {
	return &Runtime{baseEnv: baseEnv, logTo: logTo, instances: map[string]*instance{}}
}

// Invoke runs one invocation of fn synchronously. It returns an error only
// when the runtime itself cannot run the function (no binary, no port);
// failures of the function are reported in the Result.
func (r *Runtime) Invoke(ctx context.Context, fn Function, payload []byte) (Result, error) {
	inst, err := r.instance(fn)
	if err != nil {
		return Result{}, err
	}
	res, err := inst.invoke(ctx, payload)
	if errors.Is(err, errSandboxGone) {
		// A warm process that exited between invocations (after a panic,
		// say) is replaced by a fresh one, as Lambda resets the sandbox.
		if inst, err = r.instance(fn); err != nil {
			return Result{}, err
		}
		return inst.invoke(ctx, payload)
	}
	return res, err
}

// Close stops every function process.
func (r *Runtime) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, inst := range r.instances {
		inst.stop()
		delete(r.instances, name)
	}
}

func (r *Runtime) instance(fn Function) (*instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fp := fn.fingerprint()
	if inst, ok := r.instances[fn.Name]; ok {
		// A sandbox that timed out or crashed is replaced, as Lambda does.
		if inst.fingerprint == fp && inst.alive() {
			return inst, nil
		}
		inst.stop()
		delete(r.instances, fn.Name)
	}
	if _, err := os.Stat(filepath.Join(fn.Dir, "bootstrap")); err != nil {
		return nil, fmt.Errorf("function %s has no bootstrap: %w", fn.Name, err)
	}
	inst, err := newInstance(fn, fp, r.env(fn), r.logTo)
	if err != nil {
		return nil, err
	}
	r.instances[fn.Name] = inst
	return inst, nil
}

// env builds the process environment the way Lambda does: reserved
// variables, then the function's own, and nothing inherited from this
// machine but PATH.
func (r *Runtime) env(fn Function) []string {
	vars := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
		"LANG":                            "en_US.UTF-8",
		"TZ":                              ":UTC",
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                fn.Dir,
		"AWS_LAMBDA_FUNCTION_NAME":        fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      time.Now().UTC().Format("2006/01/02") + "/[$LATEST]local",
	}
	for k, v := range r.baseEnv {
		vars[k] = v
	}
	// Lambda gives each function its role's session credentials; here
	// each gets a session token of its own, so the router can tell which
	// function made a call (a fault's caller). moto ignores the token.
	vars["AWS_SESSION_TOKEN"] = CallerPrefix + fn.Name
	for k, v := range fn.Env {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// CallerPrefix starts the session token of every function; the rest is
// the function's name.
const CallerPrefix = "localcloud-"

// invocation is one request waiting for, or being served by, the process.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	traceID  string
	done     chan outcome
}

type outcome struct {
	payload []byte
	failed  bool
}

// instance is one warm process with its Runtime API server.
type instance struct {
	fn          Function
	fingerprint string
	name        string
	logTo       io.Writer

	serial sync.Mutex // one invocation at a time, as in one Lambda sandbox

	listener  net.Listener
	server    *http.Server
	cmd       *exec.Cmd
	startedAt time.Time
	next      chan *invocation
	exited    chan struct{}

	mu          sync.Mutex
	pending     map[string]*invocation
	firstNext   time.Time
	initError   []byte
	exitErr     error
	capture     *bytes.Buffer
	coldPending bool
}

func newInstance(fn Function, fp string, env []string, logTo io.Writer) (*instance, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API port for %s: %w", fn.Name, err)
	}
	inst := &instance{
		fn: fn, fingerprint: fp, name: fn.Name, logTo: logTo,
		listener: l, next: make(chan *invocation), exited: make(chan struct{}),
		pending: map[string]*invocation{}, coldPending: true,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", inst.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", inst.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", inst.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", inst.handleInitError)
	inst.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = inst.server.Serve(l) }()

	argv, err := Command(filepath.Join(fn.Dir, "bootstrap"))
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = fn.Dir
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+l.Addr().String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		l.Close()
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	inst.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		l.Close()
		return nil, fmt.Errorf("starting %s: %w", fn.Name, err)
	}
	inst.cmd = cmd
	logsDone := make(chan struct{})
	go func() { inst.copyLogs(out); close(logsDone) }()
	go func() {
		<-logsDone
		err := cmd.Wait()
		inst.mu.Lock()
		inst.exitErr = err
		if inst.exitErr == nil {
			inst.exitErr = errors.New("exit status 0")
		}
		inst.mu.Unlock()
		close(inst.exited)
	}()
	return inst, nil
}

// copyLogs forwards the process output line by line to the runtime's log
// and into the running invocation's capture.
func (inst *instance) copyLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(inst.logTo, "[%s] %s\n", inst.name, line)
		inst.mu.Lock()
		if inst.capture != nil {
			inst.capture.WriteString(line + "\n")
		}
		inst.mu.Unlock()
	}
}

func (inst *instance) stop() {
	if inst.cmd != nil && inst.cmd.Process != nil {
		_ = syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
		<-inst.exited
	}
	_ = inst.server.Close()
}

func (inst *instance) alive() bool {
	select {
	case <-inst.exited:
		return false
	default:
		return true
	}
}

func (inst *instance) invoke(ctx context.Context, payload []byte) (Result, error) {
	inst.serial.Lock()
	defer inst.serial.Unlock()
	if !inst.alive() {
		return Result{}, errSandboxGone
	}
	inv := &invocation{
		id:       uuid.NewString(),
		payload:  payload,
		deadline: time.Now().Add(inst.fn.Timeout),
		traceID:  "Root=1-" + strconv.FormatInt(time.Now().Unix(), 16) + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:24] + ";Sampled=0",
		done:     make(chan outcome, 1),
	}
	capture := &bytes.Buffer{}
	fmt.Fprintf(capture, "START RequestId: %s Version: $LATEST\n", inv.id)
	inst.mu.Lock()
	inst.pending[inv.id] = inv
	inst.capture = capture
	cold := inst.coldPending
	inst.coldPending = false
	inst.mu.Unlock()
	defer func() {
		inst.mu.Lock()
		delete(inst.pending, inv.id)
		inst.capture = nil
		inst.mu.Unlock()
	}()

	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	res := Result{RequestID: inv.id}
	start := time.Now()
	var out outcome
	select {
	case inst.next <- inv:
		start = time.Now()
		select {
		case out = <-inv.done:
		case <-timer.C:
			out = inst.timeout(inv)
		case <-inst.exited:
			out = inst.crashed(inv)
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	case <-timer.C:
		out = inst.timeout(inv)
	case <-inst.exited:
		if !cold {
			return Result{}, errSandboxGone
		}
		out = inst.crashed(inv)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	res.Duration = time.Since(start)
	res.Payload = out.payload
	if out.failed {
		res.FunctionError = "Unhandled"
	}
	if cold {
		inst.mu.Lock()
		if !inst.firstNext.IsZero() {
			res.InitDuration = inst.firstNext.Sub(inst.startedAt)
		}
		inst.mu.Unlock()
	}
	// Give the log copier a moment to drain lines written just before the
	// response, so they land in this invocation's capture.
	time.Sleep(5 * time.Millisecond)
	inst.mu.Lock()
	fmt.Fprintf(capture, "END RequestId: %s\n", inv.id)
	fmt.Fprintf(capture, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		inv.id, float64(res.Duration.Microseconds())/1000, billed(res.Duration), inst.fn.MemoryMB, maxRSSMB(inst.cmd))
	if res.InitDuration > 0 {
		fmt.Fprintf(capture, "\tInit Duration: %.2f ms", float64(res.InitDuration.Microseconds())/1000)
	}
	capture.WriteString("\n")
	res.Logs = append([]byte(nil), capture.Bytes()...)
	inst.mu.Unlock()
	fmt.Fprintf(inst.logTo, "[%s] %s", inst.name, lastLine(res.Logs))
	return res, nil
}

var errSandboxGone = errors.New("sandbox process has exited")

func billed(d time.Duration) int64 {
	ms := d.Milliseconds()
	if d%time.Millisecond != 0 || ms == 0 {
		ms++
	}
	return ms
}

// maxRSSMB reads the process's peak resident memory, as Lambda's REPORT
// line does; 0 when it cannot be read.
func maxRSSMB(cmd *exec.Cmd) int {
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return (kb + 1023) / 1024
		}
	}
	return 0
}

func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s + "\n"
}

// timeout ends the sandbox as Lambda does when a function overruns.
func (inst *instance) timeout(inv *invocation) outcome {
	inst.kill()
	return failure("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, inst.fn.Timeout.Seconds()))
}

// crashed reports a process that exited during init or an invocation.
func (inst *instance) crashed(inv *invocation) outcome {
	inst.mu.Lock()
	initErr, exitErr := inst.initError, inst.exitErr
	inst.mu.Unlock()
	if initErr != nil {
		return outcome{payload: initErr, failed: true}
	}
	return failure("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %v", inv.id, exitErr))
}

func (inst *instance) kill() {
	if inst.cmd != nil && inst.cmd.Process != nil {
		_ = syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
		<-inst.exited
	}
}

func failure(errorType, msg string) outcome {
	b, _ := json.Marshal(map[string]string{"errorType": errorType, "errorMessage": msg})
	return outcome{payload: b, failed: true}
}

func (inst *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	inst.mu.Lock()
	if inst.firstNext.IsZero() {
		inst.firstNext = time.Now()
	}
	inst.mu.Unlock()
	select {
	case inv := <-inst.next:
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", inst.fn.ARN)
		h.Set("Lambda-Runtime-Trace-Id", inv.traceID)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	}
}

func (inst *instance) finish(w http.ResponseWriter, r *http.Request, failed bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 6*1024*1024+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inst.mu.Lock()
	inv, ok := inst.pending[r.PathValue("id")]
	inst.mu.Unlock()
	if !ok {
		http.Error(w, `{"errorType":"InvalidRequestID","errorMessage":"unknown or finished invocation"}`, http.StatusBadRequest)
		return
	}
	if len(body) > 6*1024*1024 {
		inv.done <- failure("Function.ResponseSizeTooLarge", "Response payload size exceeded maximum allowed payload size (6291556 bytes).")
	} else if failed {
		inv.done <- outcome{payload: errorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type")), failed: true}
	} else {
		inv.done <- outcome{payload: body}
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

// errorBody keeps the runtime's error document, filling errorType from the
// header when the body lacks it.
func errorBody(body []byte, headerType string) []byte {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		doc = map[string]any{"errorMessage": string(body)}
	}
	if t, _ := doc["errorType"].(string); t == "" {
		if headerType == "" {
			headerType = "Unhandled"
		}
		doc["errorType"] = headerType
	}
	out, _ := json.Marshal(doc)
	return out
}

func (inst *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	inst.finish(w, r, false)
}
func (inst *instance) handleError(w http.ResponseWriter, r *http.Request) { inst.finish(w, r, true) }

func (inst *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1024*1024))
	inst.mu.Lock()
	inst.initError = errorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	inst.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}
