// Package loopback finds free ports on 127.0.0.1 and waits for local
// servers to come up. Everything local runs on loopback only.
package loopback

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// FreePort asks the kernel for an unused port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitTCP polls addr until it accepts a connection or the budget runs out.
func WaitTCP(addr string, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

// WaitHTTP polls url until it answers with any status or the budget runs out.
func WaitHTTP(url string, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	client := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// StopGroup ends a server started in its own process group (Setpgid): a
// SIGTERM to the group, then a SIGKILL if it is still there after grace.
// Workers the server forked stop with it.
func StopGroup(cmd *exec.Cmd, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	StopWatched(cmd, done, grace)
}

// StopWatched is StopGroup for a command whose Wait already runs
// elsewhere and closes exited when it returns.
func StopWatched(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}
