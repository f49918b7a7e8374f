package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/shared/fleet"
)

// msctl builds the operator tool and returns a runner bound to the local
// cloud's environment.
func (c *cloud) msctl(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "msctl")
	build := exec.Command("go", "build", "-o", bin, "../msctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building msctl: %v\n%s", err, out)
	}
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--env", "dev"}, args...)...)
		cmd.Env = append(os.Environ(), "USER=sre-test")
		for k, v := range c.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

func TestOperatorControlsOnTheLocalCloud(t *testing.T) {
	t.Parallel()
	c := newCloud(t)
	msctl := c.msctl(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := msctl(args...)
		if err != nil {
			t.Fatalf("msctl %v: %v\n%s", args, err, out)
		}
		return out
	}

	t.Run("a paused pool records alarms and does not act on them", func(t *testing.T) {
		run("pause", "live-rtmp-use1", "--reason", "maintenance window")
		c.fresh()
		rs := c.replay(c.alarm())
		if rs.Status != "NOT_STARTED" || !strings.Contains(string(rs.Decision), "pool paused by") {
			t.Fatalf("alarm on a paused pool: %+v", rs)
		}
		if out := run("fleet"); !strings.Contains(out, "paused by") || !strings.Contains(out, "maintenance window") {
			t.Fatalf("fleet does not show the pause:\n%s", out)
		}
	})

	t.Run("a dry run plans and reports but changes nothing", func(t *testing.T) {
		out := run("scale", "live-rtmp-use1", "out", "2", "--dry-run", "--reason", "rehearsal")
		arn := field(t, out, "executionArn")
		status := waitStatus(t, run, arn)
		if !strings.Contains(status, "DRY_RUN") || !strings.Contains(status, "PLANNED") {
			t.Fatalf("dry-run outcome:\n%s", status)
		}
		if nodes, _ := c.store.ListNodes(t.Context(), "live-rtmp-use1"); len(nodes) != 0 {
			t.Fatalf("a dry run wrote %d nodes", len(nodes))
		}
	})

	t.Run("a manual scale-out goes through the workflow even while paused", func(t *testing.T) {
		out := run("scale", "live-rtmp-use1", "out", "1", "--reason", "ahead of the show")
		arn := field(t, out, "executionArn")
		status := waitStatus(t, run, arn)
		if !strings.HasPrefix(status, "SUCCEEDED") {
			t.Fatalf("manual scale-out:\n%s", status)
		}
		nodes := c.servingOf(arn)
		if len(nodes) != 1 || nodes[0].State != fleet.Active {
			t.Fatalf("nodes after a manual scale-out of 1: %+v", nodes)
		}
		// Beside the summary, status reads each node's record as it is now.
		row := regexp.MustCompile(regexp.QuoteMeta(nodes[0].ID) + `\s+ACTIVE\s+ACTIVE\s+100\s`)
		if !strings.Contains(status, "AT RELEASE") || !row.MatchString(status) {
			t.Fatalf("status does not show the node at release and now:\n%s", status)
		}
		if warm := c.warmOf(arn); len(warm) != 1 || warm[0].State != fleet.Warm {
			t.Fatalf("the manual scale-out did not fill the warm pool: %+v", warm)
		}
		if out := run("fleet", "--pool", "live-rtmp-use1"); !strings.Contains(out, nodes[0].ID) || !strings.Contains(out, "ACTIVE") {
			t.Fatalf("fleet does not list the node:\n%s", out)
		}
	})

	t.Run("a resumed pool acts on alarms again", func(t *testing.T) {
		run("resume", "live-rtmp-use1")
		c.fresh()
		if rs := c.replay(c.alarm()); rs.Status != "SUCCEEDED" {
			t.Fatalf("alarm after resume: %+v", rs)
		}
	})

	t.Run("a request the trigger refuses is an error with its reason", func(t *testing.T) {
		out, err := msctl("scale", "live-rtmp-use1", "out", "99", "--reason", "too many")
		if err == nil || !strings.Contains(out, "above the pool's max of 6") {
			t.Fatalf("scale 99: err=%v\n%s", err, out)
		}
	})
}

// field reads a "key": "value" line of msctl's JSON output.
func field(t *testing.T, out, key string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.Trim(k, `"`) == key {
			return strings.Trim(strings.TrimSpace(v), `",`)
		}
	}
	t.Fatalf("no %s in:\n%s", key, out)
	return ""
}

// waitStatus polls msctl status until the execution ends, bounded.
func waitStatus(t *testing.T, run func(...string) string, arn string) string {
	t.Helper()
	for i := 0; i < 240; i++ {
		out := run("status", arn)
		if !strings.HasPrefix(out, "RUNNING") {
			return out
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("execution %s still running", arn)
	return ""
}
