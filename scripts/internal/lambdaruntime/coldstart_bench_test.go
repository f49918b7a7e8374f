package lambdaruntime

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// BenchmarkTriggerColdStart measures the trigger's cold start in this
// runtime: from process start to its first request for an invocation
// (reported as init-ms), plus the first invocation itself (first-ms). The
// function reads its pool configuration from SSM on moto, as deployed. It
// runs the Lambda build (arm64, under qemu on an amd64 machine) and a
// native build of the same code, so the emulator's share is visible.
func BenchmarkTriggerColdStart(b *testing.B) {
	srv := motoserver.Start(b)
	ctx := context.Background()
	cfg := srv.Config(ctx)
	if err := motoserver.Table(ctx, dynamodb.NewFromConfig(cfg), fleet.TableDefinition("nodes")); err != nil {
		b.Fatal(err)
	}
	f, err := pool.LoadFile("../../../infra/config/dev.yaml")
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := f.JSON()
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/mediascale/dev/pools"), Value: aws.String(string(raw)), Type: "String",
	}); err != nil {
		b.Fatal(err)
	}
	event, err := os.ReadFile("../../../testevents/trigger/alarm-back-to-ok.json")
	if err != nil {
		b.Fatal(err)
	}
	builds := map[string][]string{
		"lambda-arm64":             {"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"},
		"native-" + runtime.GOARCH: {"CGO_ENABLED=0"},
	}
	for name, env := range builds {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
				"-o", filepath.Join(dir, "bootstrap"), "../../../functions/trigger")
			cmd.Env = append(os.Environ(), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("build: %v\n%s", err, out)
			}
			if _, err := Command(filepath.Join(dir, "bootstrap")); err != nil {
				b.Skip(err)
			}
			fn := Function{Name: "trigger", Dir: dir, Timeout: 10 * time.Second, MemoryMB: 256, Env: map[string]string{
				"MEDIASCALE_TABLE": "nodes", "MEDIASCALE_POOLS_PARAMETER": "/mediascale/dev/pools", "MEDIASCALE_ENV": "dev",
			}}
			base := map[string]string{"AWS_ENDPOINT_URL": srv.URL(), "AWS_REGION": motoserver.Region,
				"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
			var initTotal, firstTotal time.Duration
			for i := 0; i < b.N; i++ {
				rt := New(base, io.Discard)
				res, err := rt.Invoke(ctx, fn, event)
				rt.Close()
				if err != nil || res.FunctionError != "" {
					b.Fatalf("invoke: %v %s", err, res.Payload)
				}
				initTotal += res.InitDuration
				firstTotal += res.Duration
			}
			b.ReportMetric(float64(initTotal.Microseconds())/1000/float64(b.N), "init-ms")
			b.ReportMetric(float64(firstTotal.Microseconds())/1000/float64(b.N), "first-ms")
		})
	}
}
