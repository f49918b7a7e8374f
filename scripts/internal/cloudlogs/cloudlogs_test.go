package cloudlogs

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// emf is a metrics line exactly as the functions write it.
func emf(t *testing.T, at time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := telemetry.EmitMetrics(context.Background(), telemetry.NewLogger(&buf, "release"), at,
		[]telemetry.Dimension{{Name: "Pool", Value: "live"}, {Name: "Direction", Value: "out"}},
		[][]string{{"Pool", "Direction"}, {"Direction"}},
		telemetry.Metric{Name: "ScaleEvents", Value: 1, Unit: telemetry.Count},
		telemetry.Metric{Name: "ScaleSeconds", Value: 38.5, Unit: telemetry.Seconds})
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(buf.Bytes())
}

func TestExtract(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		line    []byte
		points  int
		wantErr string
	}{
		{name: "a functions' metrics line yields a point per metric and dimension set", line: emf(t, at), points: 4},
		{name: "an ordinary log line yields nothing", line: []byte(`{"level":"INFO","msg":"probe","pool":"live"}`)},
		{name: "a line that is not JSON yields nothing", line: []byte(`START RequestId: 1 Version: $LATEST`)},
		{name: "a document without a timestamp is refused", line: []byte(`{"_aws":{"CloudWatchMetrics":[]},"X":1}`), wantErr: "Timestamp"},
		{name: "a metric without a number is refused", line: []byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"X"}]}]},"X":"one"}`), wantErr: "metric X"},
		{name: "a dimension without a value is refused", line: []byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Pool"]],"Metrics":[{"Name":"X"}]}]},"X":1}`), wantErr: "dimension Pool"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, data, err := Extract(c.line)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != c.points {
				t.Fatalf("%d data points, want %d", len(data), c.points)
			}
			if c.points > 0 && (ns != telemetry.Namespace || !aws.ToTime(data[0].Timestamp).Equal(at)) {
				t.Fatalf("namespace %q timestamp %v", ns, aws.ToTime(data[0].Timestamp))
			}
		})
	}
}

func TestShipWritesLogsAndMetricsToMoto(t *testing.T) {
	srv := motoserver.Start(t)
	ctx := context.Background()
	cfg := srv.Config(ctx)
	logs, cw := cloudwatchlogs.NewFromConfig(cfg), cloudwatch.NewFromConfig(cfg)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	output := append([]byte("START RequestId: r1 Version: $LATEST\n"+`{"level":"INFO","msg":"release","pool":"live"}`+"\n"), emf(t, at)...)

	n, err := New(logs, cw).Ship(ctx, "", "mediascale-dev-release", "r1", output, at)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("%d data points published, want 4", n)
	}
	got, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/mediascale-dev-release")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 3 || !strings.Contains(aws.ToString(got.Events[2].Message), `"ScaleEvents":1`) {
		t.Fatalf("log events %d, last %q", len(got.Events), aws.ToString(got.Events[len(got.Events)-1].Message))
	}
	if stream := aws.ToString(got.Events[0].LogStreamName); !strings.HasSuffix(stream, "/[$LATEST]r1") {
		t.Fatalf("log stream %q is not named as Lambda names it", stream)
	}
	stats, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String(telemetry.Namespace), MetricName: aws.String("ScaleSeconds"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("Pool"), Value: aws.String("live")}, {Name: aws.String("Direction"), Value: aws.String("out")}},
		StartTime:  aws.Time(at.Add(-time.Minute)), EndTime: aws.Time(at.Add(time.Minute)), Period: aws.Int32(60),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Datapoints) != 1 || aws.ToFloat64(stats.Datapoints[0].Maximum) != 38.5 {
		t.Fatalf("ScaleSeconds datapoints %+v", stats.Datapoints)
	}

	// A function of the second region's stack logs there, not here.
	if _, err := New(logs, cw).Ship(ctx, "us-west-2", "mediascale-devusw2-release", "r2", output, at); err != nil {
		t.Fatal(err)
	}
	west := func(o *cloudwatchlogs.Options) { o.Region = "us-west-2" }
	got, err = logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/mediascale-devusw2-release")}, west)
	if err != nil || len(got.Events) != 3 {
		t.Fatalf("us-west-2 log events: %v, %v", got, err)
	}
	if _, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/mediascale-devusw2-release")}); err == nil {
		t.Fatal("the us-west-2 function's log group is in us-east-1 too")
	}
}

func TestAHighResolutionMetricKeepsItsStorageResolution(t *testing.T) {
	line := []byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Mediascale","Dimensions":[["Pool"]],"Metrics":[` +
		`{"Name":"SessionsRefused","Unit":"Count","StorageResolution":1},{"Name":"SessionsDispatched","Unit":"Count"}]}]},"Pool":"live","SessionsRefused":1,"SessionsDispatched":0}`)
	_, data, err := Extract(line)
	if err != nil || len(data) != 2 {
		t.Fatalf("%d points, %v", len(data), err)
	}
	if aws.ToInt32(data[0].StorageResolution) != 1 || data[1].StorageResolution != nil {
		t.Fatalf("storage resolutions %v and %v, want 1 and the default", data[0].StorageResolution, data[1].StorageResolution)
	}
}
