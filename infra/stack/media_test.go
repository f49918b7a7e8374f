package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mediaFunctions is the install script's pinning code alone: its
// functions, cut out of the real script, without the installing body.
func mediaFunctions(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, MediaScript))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range []string{"nginx_sha256", "fetch_pinned"} {
		m := regexp.MustCompile(`(?ms)^` + name + `\(\) \{\n.*?^\}\n`).FindString(string(raw))
		if m == "" {
			t.Fatalf("%s has no function %s", MediaScript, name)
		}
		out = append(out, m)
	}
	return strings.Join(out, "\n")
}

func TestTheMediaBuildDownloadsNothingUnpinned(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, MediaScript))
	if err != nil {
		t.Fatal(err)
	}
	// Every download is fetch_pinned's: the only other curl is the
	// health check on loopback.
	for i, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "curl ") || strings.Contains(line, `curl -fsSL -o "$3" "$1"`) || strings.Contains(line, "http://127.0.0.1") {
			continue
		}
		t.Errorf("%s:%d downloads without a pinned checksum: %s", MediaScript, i+1, strings.TrimSpace(line))
	}
	pins := regexp.MustCompile(`(?m)^\t*(?:[0-9.]+\) echo |RTMP_MODULE_SHA256=)(\S+)`).FindAllStringSubmatch(string(raw), -1)
	if len(pins) < 2 {
		t.Fatalf("%s pins %d sources, want the module and at least one nginx", MediaScript, len(pins))
	}
	for _, pin := range pins {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pin[1]) {
			t.Errorf("pin %q is not a sha256", pin[1])
		}
	}
}

func TestAChangedSourceFailsTheMediaBuild(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed under CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	tarball := []byte("nginx-rtmp-module-1.2.2/config\n")
	served := tarball
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(served) }))
	defer srv.Close()
	sum := sha256.Sum256(tarball)
	pinned := hex.EncodeToString(sum[:])
	run := func(body string) (string, error) {
		out, err := exec.Command("bash", "-c", "set -euo pipefail\n"+mediaFunctions(t)+"\n"+body).CombinedOutput()
		return string(out), err
	}
	dest := filepath.Join(t.TempDir(), "rtmp.tar.xz")
	if out, err := run(`fetch_pinned "` + srv.URL + `" ` + pinned + ` "` + dest + `"`); err != nil {
		t.Fatalf("the pinned tarball was refused: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(tarball) {
		t.Fatalf("the pinned tarball was not kept: %q", got)
	}
	served = []byte("nginx-rtmp-module-1.2.2/config\nsomething else\n")
	out, err := run(`fetch_pinned "` + srv.URL + `" ` + pinned + ` "` + dest + `" && echo built`)
	if err == nil || strings.Contains(out, "built") || !strings.Contains(out, "the source changed, refusing to build from it") || !strings.Contains(out, "pinned "+pinned) {
		t.Fatalf("a changed tarball: err %v, output %q; want the build stopped, saying so", err, out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("the changed tarball was left behind: %v", err)
	}
	out, err = run(`sum=$(nginx_sha256 1.99.0); echo "built $sum"`)
	if err == nil || strings.Contains(out, "built") || !strings.Contains(out, "nginx 1.99.0 (the distribution's) has no pinned source checksum") {
		t.Fatalf("an nginx version without a pin: err %v, output %q; want the build stopped, saying so", err, out)
	}
	if out, err := run(`nginx_sha256 1.26.3`); err != nil || strings.TrimSpace(out) != "69ee2b237744036e61d24b836668aad3040dda461fe6f570f1787eab570c75aa" {
		t.Fatalf("nginx 1.26.3's pin: %v %q", err, out)
	}
}
