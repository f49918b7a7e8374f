package dispatch

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// activeNode walks a node through the workflow's states to ACTIVE on a
// real table and gives it a fresh heartbeat with conns sessions.
func activeNode(t *testing.T, s *fleet.Store, p, id, endpoint string, conns float64, at time.Time) {
	t.Helper()
	ctx := context.Background()
	n, err := s.CreateNode(ctx, fleet.Node{Pool: p, ID: id, AZ: "a", InstanceType: "c7g.large"})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []fleet.State{fleet.Provisioning, fleet.Deploying, fleet.Probing, fleet.Shifting, fleet.Active} {
		if n, err = s.Transition(ctx, p, id, n.State, n.Version, to, fleet.Change{Endpoint: endpoint}); err != nil {
			t.Fatalf("%s to %s: %v", id, to, err)
		}
	}
	if _, err := s.Heartbeat(ctx, p, id, fleet.Heartbeat{At: at, Healthy: true, Load: fleet.Load{Connections: conns}}); err != nil {
		t.Fatal(err)
	}
}

// TestAFallbackIsReadInItsOwnRegionOnMoto publishes a fallback
// environment in us-west-2 the way its stack does (pool configuration and
// table name in SSM, nodes in its table), puts a decoy table of the same
// name in the dispatcher's own region, and spills a session the local pool
// refuses: it must land on the us-west-2 node.
func TestAFallbackIsReadInItsOwnRegionOnMoto(t *testing.T) {
	srv := motoserver.Start(t)
	ctx := context.Background()
	cfg := srv.Config(ctx)
	clock := func() time.Time { return now }
	const table = "mediascale-devusw2-NodeTable-1A2B3C"
	stores := map[string]*fleet.Store{}
	for _, region := range []string{"us-west-2", motoserver.Region} {
		db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.Region = region })
		if err := motoserver.Table(ctx, db, fleet.TableDefinition(table)); err != nil {
			t.Fatalf("creating %s in %s: %v", table, region, err)
		}
		stores[region] = fleet.NewStore(db, table, clock)
	}
	fb := pool.Fallback{Region: "us-west-2", Environment: "devusw2", Pool: "live-rtmp-usw2"}
	activeNode(t, stores[fb.Region], fb.Pool, "w1", "127.0.1.1", 100, now.Add(-2*time.Second))
	activeNode(t, stores[motoserver.Region], fb.Pool, "decoy", "127.0.9.9", 0, now.Add(-2*time.Second))

	// The fallback environment is the shipped devusw2.
	usw2, err := pool.LoadFile("../../infra/config/devusw2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	published, err := usw2.JSON()
	if err != nil {
		t.Fatal(err)
	}
	params := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = "us-west-2" })
	for name, value := range map[string]string{coldstart.PoolsParameter(fb.Environment): string(published), coldstart.TableParameter(fb.Environment): table} {
		if _, err := params.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString}); err != nil {
			t.Fatal(err)
		}
	}

	p := classedPool()
	p.Admission.Fallbacks = []pool.Fallback{euro, fb}
	local := &fakeNodes{nodes: []fleet.Node{serving("n1", fleet.Active, 1650, 10)}}
	h := NewHandler(pool.File{Environment: "dev", Pools: []pool.Pool{p}}, local, NewRegions(cfg, clock), clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	status, a, pr := dispatchOnce(t, h, "viewer")
	if status != 200 || a.Pool != fb.Pool || a.Region != fb.Region || a.Node != "w1" || a.URL != "rtmp://127.0.1.1:1935/" || a.SpilledFrom != "live" {
		t.Fatalf("%d %+v %+v", status, a, pr)
	}
	// euro's stack was never deployed: its missing parameter is why it
	// was passed over.
	if _, _, err := NewRegions(cfg, clock).OpenFallback(ctx, euro); err == nil || !strings.Contains(err.Error(), "ParameterNotFound") {
		t.Fatalf("an undeployed fallback: %v", err)
	}
}
