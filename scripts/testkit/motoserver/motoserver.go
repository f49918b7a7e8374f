// Package motoserver starts a moto_server on a free loopback port for tests
// and local tools, and builds AWS SDK configurations that talk to it. A test
// package has one of its own, reset between its tests, so packages run in
// parallel without sharing an emulator.
package motoserver

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/mediascale/mediascale/scripts/testkit/loopback"
)

// Region is the region every local run uses.
const Region = "us-east-1"

// Server is a running moto_server.
type Server struct {
	Port int
	cmd  *exec.Cmd
	// exited is closed when the server's process has ended.
	exited chan struct{}
}

// URL is the endpoint to give the AWS SDK. It says localhost rather than
// 127.0.0.1 because moto recognises S3 bucket names in the path only then.
func (s *Server) URL() string { return fmt.Sprintf("http://localhost:%d", s.Port) }

// Require returns the path of a tool a test needs. Without it the test is
// skipped on a developer's machine and fails under CI=true, where every tool
// must have been installed.
func Require(tb testing.TB, tool string) string {
	tb.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not installed, and CI=%s requires every tool: %v", tool, os.Getenv("CI"), err)
	}
	tb.Skipf("%s is not installed; skipping (CI would fail here)", tool)
	return ""
}

// script is scripts/moto_server.py: moto_server with the project's fixes,
// DynamoDB's atomic conditional writes among them.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "moto_server.py")
}

// pkg is the test package's one moto server: started by the first test
// that asks for it, reset for every later one, stopped by Main.
var pkg struct {
	sync.Mutex
	main   bool
	server *Server
	log    *os.File
}

// Start returns the test package's moto server with nothing left of the
// tests before (moto's own reset, POST /moto-api/reset): one moto per
// package, not per test, because starting moto costs seconds. The
// package's TestMain must run its tests through Main, which stops the
// server; tests that use it must not run in parallel with one another.
func Start(tb testing.TB) *Server {
	tb.Helper()
	Require(tb, "moto_server")
	python := Require(tb, "python3")
	pkg.Lock()
	defer pkg.Unlock()
	if !pkg.main {
		tb.Fatal("motoserver.Start: the test package's TestMain must call motoserver.Main, which stops the package's moto")
	}
	if pkg.server != nil {
		if err := pkg.server.Reset(); err != nil {
			tb.Fatalf("resetting moto_server (log %s): %v", pkg.log.Name(), err)
		}
		return pkg.server
	}
	logFile, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := Launch([]string{python, script()}, nil, logFile)
	if err != nil {
		logFile.Close()
		tb.Fatalf("starting moto_server (log %s): %v", logFile.Name(), err)
	}
	pkg.server, pkg.log = s, logFile
	return s
}

// Main runs a test package's tests and then stops its moto server, if one
// was started; its log is kept when a test failed. A package's TestMain is
// os.Exit(motoserver.Main(m)).
func Main(m *testing.M) int {
	pkg.Lock()
	pkg.main = true
	pkg.Unlock()
	code := m.Run()
	pkg.Lock()
	defer pkg.Unlock()
	if pkg.server != nil {
		pkg.server.Stop()
		pkg.log.Close()
		if code == 0 {
			os.Remove(pkg.log.Name())
		} else {
			fmt.Fprintf(os.Stderr, "moto_server log: %s\n", pkg.log.Name())
		}
		pkg.server = nil
	}
	return code
}

// Reset drops every resource of every service, as a fresh server has.
func (s *Server) Reset() error {
	res, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/moto-api/reset", s.Port), "application/json", nil)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("moto-api/reset answered %s", res.Status)
	}
	return nil
}

// Launch starts a moto server (argv, to which host and port file are
// added: scripts/moto_server.py's --port-file) on a port it binds itself,
// with extra environment variables, and waits until it answers. The server
// chooses its port because a port chosen here and bound by Python a second
// later may meanwhile be taken by another test package's server, which
// would then answer for this one.
func Launch(argv []string, env []string, logTo *os.File) (*Server, error) {
	dir, err := os.MkdirTemp("", "moto-port-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	portFile := filepath.Join(dir, "port")
	cmd := exec.Command(argv[0], append(argv[1:], "-H", "127.0.0.1", "--port-file", portFile)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logTo
	cmd.Stderr = logTo
	// Its own process group, so stopping it also stops any worker it forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s := &Server{cmd: cmd, exited: exited}
	deadline := time.After(30 * time.Second)
	for s.Port == 0 {
		select {
		case <-exited:
			return nil, fmt.Errorf("moto_server exited before it listened (log %s)", logTo.Name())
		case <-deadline:
			s.Stop()
			return nil, fmt.Errorf("moto_server did not write its port in 30 s (log %s)", logTo.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if b, err := os.ReadFile(portFile); err == nil {
			if s.Port, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				s.Stop()
				return nil, fmt.Errorf("moto_server wrote port %q: %w", b, err)
			}
		}
	}
	if err := loopback.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/moto-api/", s.Port), 30*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("moto_server did not answer on port %d: %w", s.Port, err)
	}
	return s, nil
}

// Stop ends the server and its process group.
func (s *Server) Stop() { loopback.StopWatched(s.cmd, s.exited, 5*time.Second) }

// Config returns an AWS SDK configuration for the server with dummy
// credentials.
func (s *Server) Config(ctx context.Context) aws.Config {
	return ConfigFor(ctx, s.URL())
}

// ConfigFor returns an AWS SDK configuration for any local endpoint.
func ConfigFor(ctx context.Context, endpoint string) aws.Config {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		config.WithBaseEndpoint(endpoint),
	)
	if err != nil {
		// LoadDefaultConfig fails only on malformed shared config files,
		// which the explicit options above make irrelevant.
		panic(fmt.Sprintf("building local AWS config: %v", err))
	}
	return cfg
}
