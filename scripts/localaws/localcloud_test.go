package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mediascale/mediascale/infra/stack"
	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
)

const repoRoot = "../.."

// assemblies holds the cloud assemblies this test binary synthesized: the
// functions are built and each pool file synthesized once per package,
// not once per local cloud (about 25 s a cloud).
var assemblies struct {
	sync.Mutex
	root  string
	built bool
	// dirs by environment and pool file.
	dirs map[[2]string]string
}

func TestMain(m *testing.M) {
	code := motoserver.Main(m)
	if assemblies.root != "" {
		os.RemoveAll(assemblies.root)
	}
	os.Exit(code)
}

// assembly returns an environment's cloud assembly for a pool file (""
// for the environment's own), building the functions and synthesizing it
// with the real CDK CLI the first time it is asked for.
func assembly(t testing.TB, env, pools string) string {
	t.Helper()
	assemblies.Lock()
	defer assemblies.Unlock()
	if dir, ok := assemblies.dirs[[2]string{env, pools}]; ok {
		return dir
	}
	if !assemblies.built {
		build := exec.Command("make", "-s", "build")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		assemblies.built = true
	}
	if assemblies.root == "" {
		root, err := os.MkdirTemp("", "mediascale-assemblies-")
		if err != nil {
			t.Fatal(err)
		}
		assemblies.root, assemblies.dirs = root, map[[2]string]string{}
	}
	dir := filepath.Join(assemblies.root, strconv.Itoa(len(assemblies.dirs)))
	args := []string{"synth", "-c", "env=" + env, "--quiet", "--no-notices", "--no-version-reporting", "-o", dir}
	if pools != "" {
		args = append(args, "-c", "pools="+pools)
	}
	cdk, err := filepath.Abs(filepath.Join(repoRoot, "node_modules/.bin/cdk"))
	if err != nil {
		t.Fatal(err)
	}
	synth := exec.Command(cdk, args...)
	synth.Dir = repoRoot
	synth.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	if out, err := synth.CombinedOutput(); err != nil {
		t.Fatalf("cdk synth: %v\n%s", err, out)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	assemblies.dirs[[2]string{env, pools}] = abs
	return abs
}

// localCloud brings up a private local cloud for one test with the real
// scripts/localcloud, and tears it down after. extra is added to the
// script's environment (LOOP=1, POOLS=...). Every cloud has its own ports
// and loopback addresses, so the tests run two at a time (go test's
// default -parallel on two cores): most of a scenario is waiting.
func localCloud(t testing.TB, extra ...string) (env map[string]string, state string) {
	t.Helper()
	motoserver.Require(t, "moto_server")
	motoserver.Require(t, "node")
	if _, err := os.Stat(filepath.Join(repoRoot, "node_modules/.bin/cdk")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the CDK CLI is not installed (npm ci): %v", err)
		}
		t.Skip("the CDK CLI is not installed (npm ci); skipping")
	}
	vars := map[string]string{}
	for _, kv := range extra {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	extra = append(extra, "LOCALCLOUD_ASSEMBLY="+assembly(t, "dev", vars["POOLS"]))
	if fb := vars["FALLBACK_ENV"]; fb != "" {
		extra = append(extra, "LOCALCLOUD_FALLBACK_ASSEMBLY="+assembly(t, fb, vars["FALLBACK_POOLS"]))
	}
	state = t.TempDir()
	script := filepath.Join(repoRoot, "scripts/localcloud")
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(script, args...)
		cmd.Env = append(append(os.Environ(), "LOCALCLOUD_STATE="+state, "ENV=dev"), extra...)
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		if out, err := run("down"); err != nil {
			t.Errorf("localcloud down: %v\n%s", err, out)
		}
	})
	if out, err := run("up"); err != nil {
		for _, log := range []string{"deploy.log", "router.log", "loop.log", "deploy-" + vars["FALLBACK_ENV"] + ".log", "loop-fallback.log"} {
			b, _ := os.ReadFile(filepath.Join(state, log))
			t.Logf("%s:\n%s", log, b)
		}
		t.Fatalf("localcloud up: %v\n%s", err, out)
	}
	return readEnvFile(t, filepath.Join(state, "env")), state
}

func readEnvFile(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "), "=")
		if ok {
			env[k] = v
		}
	}
	return env
}

func tableItems(t *testing.T, db *dynamodb.Client, table string) int {
	t.Helper()
	// A Scan is fine in a test: it proves nothing at all was written.
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, Select: "COUNT"})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

func TestLocalCloudRunsTheDeployedTrigger(t *testing.T) {
	t.Parallel()
	env, _ := localCloud(t)
	ctx := context.Background()
	cfg := motoserver.ConfigFor(ctx, env["AWS_ENDPOINT_URL"])
	fn := lambda.NewFromConfig(cfg)
	db := dynamodb.NewFromConfig(cfg)

	conf, err := fn.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("mediascale-dev-trigger")})
	if err != nil {
		t.Fatal(err)
	}
	table := conf.Environment.Variables["MEDIASCALE_TABLE"]
	param, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(conf.Environment.Variables["MEDIASCALE_POOLS_PARAMETER"])})
	if err != nil || !strings.Contains(aws.ToString(param.Parameter.Value), "live-rtmp-use1") {
		t.Fatalf("pool parameter not deployed: %v", err)
	}

	// Every sample alarm is sent as a state change of this run, as
	// localaws invoke --at does: the trigger refuses stale ones.
	stamp := time.Now().UTC().Truncate(time.Second)
	invoke := func(file string) (*lambda.InvokeOutput, map[string]any) {
		t.Helper()
		payload, err := os.ReadFile(filepath.Join(repoRoot, "testevents/trigger", file))
		if err != nil {
			t.Fatal(err)
		}
		if payload, err = restamp(payload, stamp); err != nil {
			t.Fatal(err)
		}
		out, err := fn.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mediascale-dev-trigger"), Payload: payload})
		if err != nil {
			t.Fatalf("invoking with %s: %v", file, err)
		}
		var body map[string]any
		if err := json.Unmarshal(out.Payload, &body); err != nil {
			t.Fatalf("answer to %s is not JSON: %s", file, out.Payload)
		}
		return out, body
	}

	t.Run("a malformed event is InvalidInput and writes nothing", func(t *testing.T) {
		out, body := invoke("invalid/missing-alarm-name.json")
		if aws.ToString(out.FunctionError) != "Unhandled" || body["errorType"] != "InvalidInput" {
			t.Fatalf("FunctionError=%v body=%v", aws.ToString(out.FunctionError), body)
		}
		if !strings.Contains(body["errorMessage"].(string), "detail.alarmName is missing") {
			t.Fatalf("message = %v", body["errorMessage"])
		}
		if n := tableItems(t, db, table); n != 0 {
			t.Fatalf("table has %d items after a refused event", n)
		}
	})
	t.Run("an unknown alarm is InvalidInput and writes nothing", func(t *testing.T) {
		_, body := invoke("invalid/unknown-alarm.json")
		if body["errorType"] != "InvalidInput" || tableItems(t, db, table) != 0 {
			t.Fatalf("body=%v items=%d", body, tableItems(t, db, table))
		}
	})
	t.Run("an alarm of another account or region is InvalidInput and writes nothing", func(t *testing.T) {
		for file, says := range map[string]string{"invalid/other-account.json": "event from account 999999999999", "invalid/other-region.json": "event from region eu-west-1"} {
			_, body := invoke(file)
			if body["errorType"] != "InvalidInput" || !strings.Contains(fmt.Sprint(body["errorMessage"]), says) || tableItems(t, db, table) != 0 {
				t.Fatalf("%s: body=%v items=%d", file, body, tableItems(t, db, table))
			}
		}
	})
	t.Run("an alarm going to OK is ignored without writes", func(t *testing.T) {
		out, body := invoke("alarm-back-to-ok.json")
		if out.FunctionError != nil || body["action"] != "ignore" || tableItems(t, db, table) != 0 {
			t.Fatalf("body=%v items=%d", body, tableItems(t, db, table))
		}
	})
	t.Run("an ALARM starts an execution and marks the state change", func(t *testing.T) {
		out, body := invoke("alarm-connections-high.json")
		if out.FunctionError != nil || body["action"] != "scale" || body["pool"] != "live-rtmp-use1" || body["executionArn"] == nil {
			t.Fatalf("body=%v", body)
		}
		mark, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "DEDUPE#mediascale-dev-live-rtmp-use1-scale-out-connections@" + stamp.Format("2006-01-02T15:04:05.000-0700")},
			"sk": &ddbtypes.AttributeValueMemberS{Value: "DEDUPE#"},
		}})
		if err != nil || mark.Item == nil {
			t.Fatalf("no dedupe mark for the state change: %v", err)
		}
		_, again := invoke("alarm-connections-high.json")
		if again["action"] != "ignore" || !strings.HasPrefix(again["reason"].(string), "duplicate") {
			t.Fatalf("the same state change again: %v", again)
		}
	})
	t.Run("failed executions page the alert topic and the dashboard graphs the scaling metrics", func(t *testing.T) {
		cw := cloudwatch.NewFromConfig(cfg)
		alarms, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{stack.ExecutionsFailedAlarmName("dev")}})
		if err != nil || len(alarms.MetricAlarms) != 1 {
			t.Fatalf("alarm %s: %v, %d found", stack.ExecutionsFailedAlarmName("dev"), err, len(alarms.MetricAlarms))
		}
		a := alarms.MetricAlarms[0]
		if len(a.AlarmActions) != 1 || !strings.HasSuffix(a.AlarmActions[0], ":mediascale-dev-alerts") {
			t.Fatalf("alarm actions %v, want the alert topic", a.AlarmActions)
		}
		un, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{stack.NodesUnfinishedAlarmName("dev")}})
		if err != nil || len(un.MetricAlarms) != 1 || aws.ToString(un.MetricAlarms[0].MetricName) != "NodesUnfinished" ||
			len(un.MetricAlarms[0].Dimensions) != 0 || len(un.MetricAlarms[0].AlarmActions) != 1 || !strings.HasSuffix(un.MetricAlarms[0].AlarmActions[0], ":mediascale-dev-alerts") {
			t.Fatalf("alarm %s: %+v, %v", stack.NodesUnfinishedAlarmName("dev"), un, err)
		}
		watched := map[string]bool{}
		for _, m := range a.Metrics {
			if m.MetricStat != nil {
				for _, d := range m.MetricStat.Metric.Dimensions {
					watched[aws.ToString(m.MetricStat.Metric.MetricName)+" "+aws.ToString(d.Value)] = true
				}
			}
		}
		for _, machine := range []string{"scale-out", "scale-in"} {
			arn := "arn:aws:states:us-east-1:123456789012:stateMachine:mediascale-dev-" + machine
			if !watched["ExecutionsFailed "+arn] || !watched["ExecutionsTimedOut "+arn] {
				t.Fatalf("the alarm does not watch failures of %s: %v", arn, watched)
			}
		}
		dash, err := cw.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String(stack.DashboardName("dev"))})
		if err != nil {
			t.Fatal(err)
		}
		body := aws.ToString(dash.DashboardBody)
		for _, want := range []string{"ScaleEvents", "StepDuration", "Rollbacks", "ForcedSessions", "ReconcilerFindings", "ScaleSeconds",
			"live-rtmp-use1: load per node", "voice-sfu-use1: load per node", "live-rtmp-use1: capacity (nodes)", "ForecastFloor", "LoadCapacity",
			stack.ExecutionsFailedAlarmName("dev")} {
			if !strings.Contains(body, want) {
				t.Errorf("the dashboard does not show %s", want)
			}
		}
	})
}

// stagingNetwork makes a VPC with two function subnets and a node
// security group, and returns the network settings naming them.
func stagingNetwork(t *testing.T, c *ec2.Client) (map[string]any, string) {
	t.Helper()
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.60.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for i, az := range []string{"us-east-1a", "us-east-1b"} {
		sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(az), CidrBlock: aws.String(fmt.Sprintf("10.60.%d.0/24", i))})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: vpc.Vpc.VpcId, GroupName: aws.String("staging-nodes"), Description: aws.String("staging nodes")})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"vpcId": aws.ToString(vpc.Vpc.VpcId), "functionSubnets": subnets, "nodeSecurityGroups": []string{aws.ToString(sg.GroupId)}}, aws.ToString(sg.GroupId)
}

// cdkContext reads cdk.json's context.
func cdkContext(t *testing.T) map[string]any {
	t.Helper()
	ctx, err := stack.ReadContext(filepath.Join(repoRoot, "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func TestPerEnvironmentDeployAndDiff(t *testing.T) {
	t.Parallel()
	env, _ := localCloud(t)
	run := func(extra []string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(repoRoot, "scripts/cdkenv"), args...)
		cmd.Env = append(os.Environ(), extra...)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out := t.TempDir()
	if text, err := run(nil, "dev", "diff", "-o", out); err != nil {
		t.Fatalf("diff of the deployed dev stack: %v\n%s", err, text)
	}
	// Staging deploys into a VPC of its own, named in cdk.json. Make one on
	// the local cloud and point staging at it for this run, the way a
	// pipeline overrides an environment's settings with -c.
	ctx := context.Background()
	cfg := motoserver.ConfigFor(ctx, env["AWS_ENDPOINT_URL"])
	network, nodeGroup := stagingNetwork(t, ec2.NewFromConfig(cfg))
	envs := cdkContext(t)["environments"].(map[string]any)
	envs["staging"].(map[string]any)["network"] = network
	override, _ := json.Marshal(envs)
	if text, err := run([]string{"CDK_APPROVAL=never"}, "staging", "deploy", "-o", out, "-c", "environments="+string(override)); err != nil {
		t.Fatalf("deploy of staging: %v\n%s", err, text)
	}
	st, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("mediascale-staging")})
	if err != nil || string(st.Stacks[0].StackStatus) != "CREATE_COMPLETE" {
		t.Fatalf("staging stack: %v", err)
	}
	conf, err := lambda.NewFromConfig(cfg).GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("mediascale-staging-probe")})
	if err != nil || conf.VpcConfig == nil || len(conf.VpcConfig.SubnetIds) != 2 || len(conf.VpcConfig.SecurityGroupIds) != 1 {
		t.Fatalf("the staging probe is not in the staging VPC: %v %+v", err, conf.VpcConfig)
	}
	groups, err := ec2.NewFromConfig(cfg).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{nodeGroup}})
	if err != nil {
		t.Fatal(err)
	}
	admitted := map[int32]bool{}
	for _, perm := range groups.SecurityGroups[0].IpPermissions {
		for _, pair := range perm.UserIdGroupPairs {
			if aws.ToString(pair.GroupId) == conf.VpcConfig.SecurityGroupIds[0] {
				admitted[aws.ToInt32(perm.FromPort)] = true
			}
		}
	}
	if !admitted[8080] || !admitted[1935] {
		t.Fatalf("the node security group admits the functions on %v, want the health port 8080 and the media port 1935", admitted)
	}
	// A non-prod environment goes away with everything it made.
	if text, err := run(nil, "staging", "destroy"); err != nil {
		t.Fatalf("destroy of staging: %v\n%s", err, text)
	}
	if gone, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("mediascale-staging")}); err == nil &&
		len(gone.Stacks) > 0 && string(gone.Stacks[0].StackStatus) != "DELETE_COMPLETE" {
		t.Fatalf("staging after destroy: %s", gone.Stacks[0].StackStatus)
	}
	if text, err := run(nil, "qa", "diff"); err == nil || !strings.Contains(text, "no environment 'qa'") {
		t.Fatalf("an unknown environment: %v\n%s", err, text)
	}
	if text, err := run(nil, "prod", "destroy"); err == nil || !strings.Contains(text, "prod is not destroyed from here") {
		t.Fatalf("destroying prod: %v\n%s", err, text)
	}
}
