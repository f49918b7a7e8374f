// Package medianode runs real media servers on loopback for tests and local
// runs: nginx with the RTMP module, configured like a deployed node (RTMP
// on the media port, /healthz and the RTMP /stat page on the health port).
package medianode

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/mediascale/mediascale/scripts/testkit/loopback"
)

// Paths of Debian's nginx and its RTMP module (packages nginx and
// libnginx-mod-rtmp).
const (
	NginxBinary = "/usr/sbin/nginx"
	RTMPModule  = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
)

// Nginx is one running nginx-rtmp media node.
type Nginx struct {
	Dir        string
	Host       string
	MediaPort  int
	HealthPort int
	cmd        *exec.Cmd
}

var confTemplate = template.Must(template.New("nginx").Parse(`
load_module {{.Module}};
daemon off;
master_process on;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 256; }
rtmp {
    server {
        listen {{.Host}}:{{.MediaPort}};
        chunk_size 4096;
        application live {
            live on;
            record off;
        }
    }
}
http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    server {
        listen {{.Host}}:{{.HealthPort}};
        location = /healthz { return 200 "ok\n"; }
        location /stat { rtmp_stat all; }
        location /control { rtmp_control all; }
    }
}
`))

// Available reports why nginx-rtmp cannot run here, or nil.
func Available() error {
	for _, f := range []string{NginxBinary, RTMPModule} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s is missing (apt-get install nginx libnginx-mod-rtmp)", f)
		}
	}
	return nil
}

// Require skips a test without nginx-rtmp on a developer's machine and
// fails it under CI=true.
func Require(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("CI=%s requires nginx-rtmp: %v", os.Getenv("CI"), err)
		}
		tb.Skip(err)
	}
}

// StartForTest runs a node for one test and stops it after.
func StartForTest(tb testing.TB) *Nginx {
	tb.Helper()
	Require(tb)
	n, err := Start(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Stop)
	return n
}

// Start runs nginx-rtmp on 127.0.0.1 with fresh ports, its files in dir,
// and waits until both ports accept connections.
func Start(dir string) (*Nginx, error) {
	media, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	health, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	return StartAt(dir, "127.0.0.1", media, health)
}

// StartAt runs nginx-rtmp on a given loopback address and ports, as a
// node of its own: the local cloud gives every instance an address in
// 127.0.0.0/8 and the pool's real ports.
func StartAt(dir, host string, media, health int) (*Nginx, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("media nodes run on loopback only, not %q", host)
	}
	n := &Nginx{Dir: dir, Host: host, MediaPort: media, HealthPort: health}
	var conf bytes.Buffer
	if err := confTemplate.Execute(&conf, map[string]any{
		"Module": RTMPModule, "Dir": dir, "Host": n.Host, "MediaPort": media, "HealthPort": health,
	}); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	n.cmd = exec.Command(NginxBinary, "-p", dir, "-c", confPath)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	for _, port := range []int{media, health} {
		if err := loopback.WaitTCP(net.JoinHostPort(n.Host, strconv.Itoa(port)), 10*time.Second); err != nil {
			n.Stop()
			out, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx did not listen on %s:%d: %v\n%s", n.Host, port, err, out)
		}
	}
	return n, nil
}

// Stop ends nginx and its workers.
func (n *Nginx) Stop() {
	loopback.StopGroup(n.cmd, 5*time.Second)
	n.cmd = nil
}

// MediaAddr is the RTMP address.
func (n *Nginx) MediaAddr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.MediaPort)) }

// Publish pushes a generated test stream to the node with ffmpeg for at
// most the given seconds: one real RTMP session that ends by itself. The
// returned command is running; Wait for it or kill it.
func (n *Nginx) Publish(tb testing.TB, stream string, seconds int) *exec.Cmd {
	tb.Helper()
	return PublishTo(tb, n.MediaAddr(), stream, seconds)
}

// PublishTo is Publish for a media node known only by its RTMP address
// (host:port on loopback), such as the local cloud's.
func PublishTo(tb testing.TB, addr, stream string, seconds int) *exec.Cmd {
	tb.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("CI=%s requires ffmpeg: %v", os.Getenv("CI"), err)
		}
		tb.Skip("ffmpeg is not installed")
	}
	cmd := exec.Command(bin, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", "rtmp://"+addr+"/live/"+stream)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting ffmpeg: %v", err)
	}
	tb.Cleanup(func() { loopback.StopGroup(cmd, 2*time.Second) })
	return cmd
}
