package fleettest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/fleet"
)

// OnMoto starts a moto server for the test, creates the node table named
// table on it, and returns the server's AWS config and the table's store.
func OnMoto(tb testing.TB, table string) (aws.Config, *fleet.Store) {
	tb.Helper()
	ctx := context.Background()
	cfg := motoserver.Start(tb).Config(ctx)
	db := dynamodb.NewFromConfig(cfg)
	if err := motoserver.Table(ctx, db, fleet.TableDefinition(table)); err != nil {
		tb.Fatal(err)
	}
	return cfg, fleet.NewStore(db, table, time.Now)
}
