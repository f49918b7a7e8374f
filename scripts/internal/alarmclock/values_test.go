package alarmclock

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/alarm"
)

// TestAnAlarmReadsOnlyItsOwnDimensionsOnMoto: a pool alarm averages the
// Pool series alone, as CloudWatch matches dimensions exactly; a node's
// own Pool+Node series never lands in it.
func TestAnAlarmReadsOnlyItsOwnDimensionsOnMoto(t *testing.T) {
	srv := motoserver.Start(t)
	ctx := context.Background()
	cw := cloudwatch.NewFromConfig(srv.Config(ctx))
	now := time.Now().UTC().Truncate(10 * time.Second)
	at := now.Add(-15 * time.Second)
	put := func(v float64, dims ...cwtypes.Dimension) {
		t.Helper()
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Mediascale"), MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String("Connections"), Value: aws.Float64(v), Timestamp: aws.Time(at), Dimensions: dims, StorageResolution: aws.Int32(1),
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	pool := cwtypes.Dimension{Name: aws.String("Pool"), Value: aws.String("live")}
	node := cwtypes.Dimension{Name: aws.String("Node"), Value: aws.String("n-1")}
	put(0, pool, node) // a node on its way in: its own series only
	put(30, pool)      // the ACTIVE node, in the pool's series too
	put(30, pool, cwtypes.Dimension{Name: aws.String("Node"), Value: aws.String("n-2")})

	c := &Clock{CW: cw}
	d := alarm.Definition{Namespace: "Mediascale", Metric: "Connections", Dimensions: map[string]string{"Pool": "live"},
		Statistic: "Average", Period: 10 * time.Second, EvaluationPeriods: 2}
	values, err := c.values(ctx, d, now)
	if err != nil {
		t.Fatal(err)
	}
	// The range is the two evaluation periods and two before them.
	if len(values) != 4 || values[0] != nil || values[1] != nil || values[2] == nil || *values[2] != 30 || values[3] != nil {
		t.Fatalf("values %v; want [missing, missing, 30, missing]: the average of the Pool series alone", deref(values))
	}
}

func deref(vs []*float64) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		if v != nil {
			out[i] = *v
		}
	}
	return out
}
