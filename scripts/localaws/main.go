// Command localaws is the Go half of scripts/localcloud: it runs the Lambda
// router in front of moto and invokes deployed functions the way
// `sam local invoke` would.
//
//	localaws router --listen 127.0.0.1:PORT --moto http://127.0.0.1:PORT --assembly cdk.out
//	localaws invoke [--env dev] [--at now] FUNCTION EVENT_FILE
//	localaws replay [--env dev] [--at now] EVENT_FILE
//	localaws verify --stack NAME --template FILE
//	localaws activate --motoapi URL
//	localaws medianode --dir DIR --endpoints FILE
//	localaws loop [--env dev] [--state DIR] [--agent FILE] [--schedule-speedup 6]
//	localaws crowd [--pool NAME] [--peak 36] [--ramp 20s] [--hold 90s] [--limit 8m] [--out PREFIX]
//	localaws account
//	localaws freeport
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/mediascale/mediascale/scripts/internal/cloudlogs"
	"github.com/mediascale/mediascale/scripts/internal/lambdarouter"
	"github.com/mediascale/mediascale/scripts/internal/lambdaruntime"
	"github.com/mediascale/mediascale/scripts/testkit/loopback"
	"github.com/mediascale/mediascale/scripts/testkit/medianode"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
	"github.com/mediascale/mediascale/shared/health"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "router":
		err = router(os.Args[2:])
	case "invoke":
		var code int
		code, err = invoke(os.Args[2:])
		if err == nil {
			os.Exit(code)
		}
	case "replay":
		var code int
		code, err = replay(os.Args[2:])
		if err == nil {
			os.Exit(code)
		}
	case "verify":
		err = verify(os.Args[2:])
	case "account":
		err = account()
	case "activate":
		err = activate(os.Args[2:])
	case "medianode":
		err = mediaNode(os.Args[2:])
	case "loop":
		err = loop(os.Args[2:])
	case "crowd":
		err = crowd(os.Args[2:])
	case "freeport":
		var port int
		if port, err = loopback.FreePort(); err == nil {
			fmt.Println(port)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "localaws %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: localaws router|invoke|replay|verify|activate|medianode|loop|crowd|account|freeport ...")
	os.Exit(2)
}

func router(args []string) error {
	fs := flag.NewFlagSet("router", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve on")
	moto := fs.String("moto", "", "URL of the moto server behind the router")
	assembly := fs.String("assembly", "cdk.out", "cloud assemblies holding the deployed templates and assets, comma-separated")
	regions := fs.String("regions", motoserver.Region, "regions stacks are deployed in, comma-separated, the local cloud's own first")
	_ = fs.Parse(args)
	motoURL, err := url.Parse(*moto)
	if err != nil || *moto == "" {
		return fmt.Errorf("--moto must be the moto server's URL")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("--listen %s: the local cloud serves on loopback only", *listen)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var assemblyDirs []string
	for _, dir := range strings.Split(*assembly, ",") {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		assemblyDirs = append(assemblyDirs, abs)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	// Functions call AWS through the router, so their own Lambda calls are
	// served here as well; "localhost" keeps moto's S3 path routing.
	baseEnv := map[string]string{
		"AWS_ENDPOINT_URL":      "http://localhost:" + port,
		"AWS_REGION":            motoserver.Region,
		"AWS_DEFAULT_REGION":    motoserver.Region,
		"AWS_ACCESS_KEY_ID":     "testing",
		"AWS_SECRET_ACCESS_KEY": "testing",
	}
	for _, k := range []string{"MEDIASCALE_LOG_LEVEL", "MEDIASCALE_MAX_WAIT_SECONDS", "MEDIASCALE_MAX_DRAIN_SECONDS", "MEDIASCALE_LOCAL_ENDPOINTS",
		"MEDIASCALE_ORPHAN_GRACE_SECONDS", "MEDIASCALE_STUCK_AFTER_SECONDS"} {
		if v := os.Getenv(k); v != "" {
			baseEnv[k] = v
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("component", "router")
	rt := lambdaruntime.New(baseEnv, os.Stdout)
	defer rt.Close()
	motoCfg := motoserver.ConfigFor(context.Background(), motoURL.String())
	catalog := lambdarouter.DeployedCatalog{Lambda: lambda.NewFromConfig(motoCfg), Regions: strings.Split(*regions, ","), AssemblyDirs: assemblyDirs}
	router := lambdarouter.New(motoURL, catalog, rt, log)
	router.ShipTo(cloudlogs.New(cloudwatchlogs.NewFromConfig(motoCfg), cloudwatch.NewFromConfig(motoCfg)))
	router.ServeFunctionURLs(lambda.NewFromConfig(motoCfg), aws.Credentials{AccessKeyID: baseEnv["AWS_ACCESS_KEY_ID"], SecretAccessKey: baseEnv["AWS_SECRET_ACCESS_KEY"]}, motoserver.Region)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 30 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Info("serving", "address", l.Addr().String(), "moto", motoURL.String(), "assemblies", assemblyDirs, "regions", *regions)
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// invoke calls a deployed function through the local cloud and prints its
// logs to stderr and its answer to stdout. The exit status is 1 when the
// function failed, so scripts can tell.
func invoke(args []string) (int, error) {
	fs := flag.NewFlagSet("invoke", flag.ExitOnError)
	env := fs.String("env", envOr("MEDIASCALE_ENV", "dev"), "environment whose function to call when given a short name")
	at := fs.String("at", "now", atUsage)
	_ = fs.Parse(args)
	if fs.NArg() != 2 {
		return 2, fmt.Errorf("usage: localaws invoke [--env dev] [--at now] FUNCTION EVENT_FILE")
	}
	name, file := fs.Arg(0), fs.Arg(1)
	if !strings.HasPrefix(name, "mediascale-") && !strings.HasPrefix(name, "arn:") {
		name = "mediascale-" + *env + "-" + name
	}
	payload, err := os.ReadFile(file)
	if err != nil {
		return 2, err
	}
	if payload, err = stamped(payload, *at); err != nil {
		return 2, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cfg, err := localConfig(ctx)
	if err != nil {
		return 2, err
	}
	client := lambda.NewFromConfig(cfg)
	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(name),
		Payload:      payload,
		LogType:      types.LogTypeTail,
	})
	if err != nil {
		return 1, fmt.Errorf("invoking %s: %w", name, err)
	}
	if out.LogResult != nil {
		if logs, err := base64.StdEncoding.DecodeString(*out.LogResult); err == nil {
			os.Stderr.Write(logs)
		}
	}
	var pretty any
	if json.Unmarshal(out.Payload, &pretty) == nil {
		b, _ := json.MarshalIndent(pretty, "", "  ")
		fmt.Println(string(b))
	} else {
		fmt.Println(string(out.Payload))
	}
	if out.FunctionError != nil {
		var e struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &e)
		fmt.Fprintf(os.Stderr, "%s failed: %s: %s\n", name, e.Type, e.Message)
		return 1, nil
	}
	return 0, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// localConfig is the SDK configuration for the running local cloud.
func localConfig(ctx context.Context) (aws.Config, error) {
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return aws.Config{}, fmt.Errorf("AWS_ENDPOINT_URL is not set: is the local cloud up? (source .localcloud/env)")
	}
	cfg := motoserver.ConfigFor(ctx, endpoint)
	// A second stack of the local cloud (a fallback region) is reached
	// with its region in AWS_REGION.
	if r := os.Getenv("AWS_REGION"); r != "" {
		cfg.Region = r
	}
	return cfg, nil
}

// account prints the account id the local cloud's credentials belong to.
func account() error {
	ctx := context.Background()
	cfg, err := localConfig(ctx)
	if err != nil {
		return err
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	fmt.Println(aws.ToString(out.Account))
	return nil
}

// verify checks that every resource of a template was really created.
func verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	stackName := fs.String("stack", "", "stack name")
	template := fs.String("template", "", "synthesized template")
	_ = fs.Parse(args)
	ctx := context.Background()
	cfg, err := localConfig(ctx)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*template)
	if err != nil {
		return err
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string          `json:"Type"`
			Properties json.RawMessage `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		return fmt.Errorf("reading %s: %w", *template, err)
	}
	created, physical := map[string]string{}, map[string]string{}
	p := cloudformation.NewListStackResourcesPaginator(cloudformation.NewFromConfig(cfg), &cloudformation.ListStackResourcesInput{StackName: stackName})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing resources of %s: %w", *stackName, err)
		}
		for _, r := range page.StackResourceSummaries {
			created[aws.ToString(r.LogicalResourceId)] = string(r.ResourceStatus)
			physical[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
		}
	}
	// moto's CloudFormation skips AWS::CloudWatch::Alarm,
	// AWS::SNS::TopicPolicy and AWS::Lambda::Url: make them through their
	// APIs from the template's own properties (references resolved to
	// what the stack created), and count them as created.
	byAPI := map[string]bool{"AWS::CloudWatch::Alarm": true, "AWS::SNS::TopicPolicy": true, "AWS::Lambda::Url": true}
	made := 0
	for id, r := range tmpl.Resources {
		props := resolveRefs(r.Properties, physical)
		switch r.Type {
		case "AWS::CloudWatch::Alarm":
			err = putAlarm(ctx, cloudwatch.NewFromConfig(cfg), props)
		case "AWS::SNS::TopicPolicy":
			err = putTopicPolicy(ctx, sns.NewFromConfig(cfg), props)
		case "AWS::Lambda::Url":
			err = putFunctionURL(ctx, lambda.NewFromConfig(cfg), props, physical)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("making %s (%s) outside CloudFormation: %w", id, r.Type, err)
		}
		made++
	}
	// moto has no EC2 Image Builder at all: the media image pipeline is
	// deployed on AWS only, and every local node runs nginx-rtmp from
	// scripts/testkit/medianode instead of an image. This is the one place
	// the local cloud leaves part of the template out, and it says so.
	notEmulated := 0
	var missing []string
	for id, r := range tmpl.Resources {
		if r.Type == "AWS::CDK::Metadata" || byAPI[r.Type] {
			continue
		}
		if strings.HasPrefix(r.Type, "AWS::ImageBuilder::") {
			notEmulated++
			continue
		}
		if st := created[id]; !strings.HasSuffix(st, "_COMPLETE") || strings.Contains(st, "ROLLBACK") || strings.Contains(st, "DELETE") {
			missing = append(missing, fmt.Sprintf("%s (%s): %q", id, r.Type, st))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("stack %s lacks %d of its resources:\n  %s", *stackName, len(missing), strings.Join(missing, "\n  "))
	}
	fmt.Printf("stack %s: all %d resources created (%d alarms and topic policies through their APIs)\n", *stackName, len(created)+made, made)
	if notEmulated > 0 {
		fmt.Printf("stack %s: its %d EC2 Image Builder resources (the media image pipeline) are not emulated: moto has no Image Builder; local nodes run nginx-rtmp on loopback\n",
			*stackName, notEmulated)
	}
	return nil
}

// putAlarm creates a metric alarm from AWS::CloudWatch::Alarm properties
// whose references are resolved: a single metric or a metric math
// expression, with its actions.
func putAlarm(ctx context.Context, cw *cloudwatch.Client, props json.RawMessage) error {
	type dimension struct{ Name, Value string }
	var p struct {
		AlarmName          string
		AlarmDescription   string
		AlarmActions       []string
		Namespace          string
		MetricName         string
		Statistic          string
		Period             int32
		EvaluationPeriods  int32
		Threshold          float64
		ComparisonOperator string
		TreatMissingData   string
		Dimensions         []dimension
		Metrics            []struct {
			Id, Expression, Label string
			ReturnData            *bool
			MetricStat            *struct {
				Metric struct {
					Namespace, MetricName string
					Dimensions            []dimension
				}
				Period int32
				Stat   string
			}
		}
	}
	if err := json.Unmarshal(props, &p); err != nil {
		return fmt.Errorf("alarm properties are not literal values: %w", err)
	}
	dims := func(ds []dimension) []cwtypes.Dimension {
		var out []cwtypes.Dimension
		for _, d := range ds {
			out = append(out, cwtypes.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
		}
		return out
	}
	in := &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(p.AlarmName), AlarmDescription: aws.String(p.AlarmDescription), AlarmActions: p.AlarmActions,
		EvaluationPeriods: aws.Int32(p.EvaluationPeriods), Threshold: aws.Float64(p.Threshold),
		ComparisonOperator: cwtypes.ComparisonOperator(p.ComparisonOperator), TreatMissingData: aws.String(p.TreatMissingData),
	}
	if len(p.Metrics) == 0 {
		in.Namespace, in.MetricName, in.Dimensions = aws.String(p.Namespace), aws.String(p.MetricName), dims(p.Dimensions)
		in.Statistic, in.Period = cwtypes.Statistic(p.Statistic), aws.Int32(p.Period)
	}
	for _, m := range p.Metrics {
		q := cwtypes.MetricDataQuery{Id: aws.String(m.Id), ReturnData: m.ReturnData}
		if m.Expression != "" {
			q.Expression = aws.String(m.Expression)
		}
		if m.Label != "" {
			q.Label = aws.String(m.Label)
		}
		if st := m.MetricStat; st != nil {
			q.MetricStat = &cwtypes.MetricStat{Period: aws.Int32(st.Period), Stat: aws.String(st.Stat), Metric: &cwtypes.Metric{
				Namespace: aws.String(st.Metric.Namespace), MetricName: aws.String(st.Metric.MetricName), Dimensions: dims(st.Metric.Dimensions),
			}}
		}
		in.Metrics = append(in.Metrics, q)
	}
	_, err := cw.PutMetricAlarm(ctx, in)
	return err
}

// putFunctionURL gives a function the URL configuration of an
// AWS::Lambda::Url, whose target is the function's Fn::GetAtt Arn. The
// router serves it (lambdarouter.URLPrefix).
func putFunctionURL(ctx context.Context, c *lambda.Client, props json.RawMessage, physical map[string]string) error {
	var p struct {
		AuthType          string
		TargetFunctionArn struct {
			GetAtt []string `json:"Fn::GetAtt"`
		}
	}
	if err := json.Unmarshal(props, &p); err != nil || len(p.TargetFunctionArn.GetAtt) != 2 || p.TargetFunctionArn.GetAtt[1] != "Arn" {
		return fmt.Errorf("function URL properties name no function by Fn::GetAtt Arn: %s", props)
	}
	name, ok := physical[p.TargetFunctionArn.GetAtt[0]]
	if !ok {
		return fmt.Errorf("function URL target %s was not created", p.TargetFunctionArn.GetAtt[0])
	}
	_, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name), AuthType: types.FunctionUrlAuthType(p.AuthType)})
	return err
}

// putTopicPolicy sets an AWS::SNS::TopicPolicy's document on each of its
// topics, whose references are resolved to ARNs.
func putTopicPolicy(ctx context.Context, c *sns.Client, props json.RawMessage) error {
	var p struct {
		PolicyDocument json.RawMessage
		Topics         []string
	}
	if err := json.Unmarshal(props, &p); err != nil {
		return fmt.Errorf("topic policy properties are not literal values: %w", err)
	}
	for _, arn := range p.Topics {
		if _, err := c.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{
			TopicArn: aws.String(arn), AttributeName: aws.String("Policy"), AttributeValue: aws.String(string(p.PolicyDocument)),
		}); err != nil {
			return err
		}
	}
	return nil
}

// resolveRefs replaces every {"Ref": id} in a template fragment with the
// physical id of that resource in the deployed stack.
func resolveRefs(raw json.RawMessage, physical map[string]string) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	var walk func(any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["Ref"].(string); ok && len(t) == 1 {
				if id, ok := physical[ref]; ok {
					return id
				}
			}
			for k, x := range t {
				t[k] = walk(x)
			}
		case []any:
			for i, x := range t {
				t[i] = walk(x)
			}
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return raw
	}
	return out
}

// activate makes the deployed state machines executable. moto keeps state
// machines created by CloudFormation apart from the ones its interpreter
// runs: read each deployed definition, switch execution on, and create the
// machine again under the same name, so its ARN stays the one the stack's
// outputs and the trigger's environment name.
func activate(args []string) error {
	fs := flag.NewFlagSet("activate", flag.ExitOnError)
	motoAPI := fs.String("motoapi", "", "moto server URL (for /moto-api/config)")
	regions := fs.String("regions", "", "regions whose machines to activate, comma-separated (default the configured one)")
	_ = fs.Parse(args)
	ctx := context.Background()
	cfg, err := localConfig(ctx)
	if err != nil {
		return err
	}
	if *regions == "" {
		*regions = cfg.Region
	}
	// Every region's machines are read before execution is switched on:
	// from then on moto lists only the executing backend's.
	type deployed struct {
		client *sfn.Client
		d      *sfn.DescribeStateMachineOutput
	}
	var machines []deployed
	for _, region := range strings.Split(*regions, ",") {
		client := sfn.NewFromConfig(cfg, func(o *sfn.Options) { o.Region = region })
		list, err := client.ListStateMachines(ctx, &sfn.ListStateMachinesInput{})
		if err != nil {
			return fmt.Errorf("listing state machines in %s: %w", region, err)
		}
		for _, m := range list.StateMachines {
			d, err := client.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: m.StateMachineArn})
			if err != nil {
				return err
			}
			machines = append(machines, deployed{client, d})
		}
	}
	resp, err := http.Post(strings.TrimRight(*motoAPI, "/")+"/moto-api/config", "application/json",
		strings.NewReader(`{"stepfunctions":{"execute_state_machine":true}}`))
	if err != nil {
		return fmt.Errorf("switching moto's state machine execution on: %w", err)
	}
	resp.Body.Close()
	for _, m := range machines {
		d := m.d
		out, err := m.client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
			Name: d.Name, Definition: d.Definition, RoleArn: d.RoleArn, Type: d.Type,
			TracingConfiguration: d.TracingConfiguration, LoggingConfiguration: d.LoggingConfiguration,
		})
		if err != nil {
			return fmt.Errorf("creating %s in the executing backend: %w", aws.ToString(d.Name), err)
		}
		if aws.ToString(out.StateMachineArn) != aws.ToString(d.StateMachineArn) {
			return fmt.Errorf("state machine %s came back as %s", aws.ToString(d.StateMachineArn), aws.ToString(out.StateMachineArn))
		}
		fmt.Printf("state machine %s is executable\n", aws.ToString(d.StateMachineArn))
	}
	return nil
}

// mediaNode runs a real nginx-rtmp media node on loopback for the local
// cloud, records it as every node's endpoint, and stops with a signal.
func mediaNode(args []string) error {
	fs := flag.NewFlagSet("medianode", flag.ExitOnError)
	dir := fs.String("dir", "", "folder for the node's files")
	endpoints := fs.String("endpoints", "", "endpoint file the functions read")
	_ = fs.Parse(args)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	n, err := medianode.Start(*dir)
	if err != nil {
		return err
	}
	defer n.Stop()
	doc, _ := json.Marshal(map[string]any{"default": health.Endpoint{Host: n.Host, HealthPort: n.HealthPort, MediaPort: n.MediaPort}})
	if err := os.WriteFile(*endpoints, doc, 0o644); err != nil {
		return err
	}
	fmt.Printf("nginx-rtmp media node: rtmp %s, health %s:%d\n", n.MediaAddr(), n.Host, n.HealthPort)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	return nil
}
