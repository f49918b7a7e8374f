package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/shared/pool"
)

// repoRoot is where cdk.json and the pool files live, relative to this
// package.
const repoRoot = "../.."

// cdkContext reads the environments block of cdk.json, so the tests see the
// same settings as `cdk synth`.
func cdkContext(t *testing.T) map[string]any {
	t.Helper()
	ctx, err := ReadContext(filepath.Join(repoRoot, "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// synth builds one environment's stack the way infra/main.go does and
// returns its template as a map and as an assertions.Template.
func synth(t *testing.T, env string) (map[string]any, assertions.Template) {
	t.Helper()
	s := build(t, env)
	tmpl := assertions.Template_FromStack(s.Stack, nil)
	raw, err := json.Marshal(tmpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc, tmpl
}

// build builds one environment's stack the way infra/main.go does.
func build(t *testing.T, env string) *Stack {
	t.Helper()
	settings, err := SettingsFor(cdkContext(t)["environments"], env)
	if err != nil {
		t.Fatal(err)
	}
	pools, err := pool.LoadFile(filepath.Join(repoRoot, settings.Config))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPools(env, settings, pools); err != nil {
		t.Fatal(err)
	}
	// The assets are placeholders: these tests read the template, and the
	// real binaries are exercised by the local-cloud tests.
	assets := t.TempDir()
	for _, fn := range FunctionNames() {
		if err := os.MkdirAll(filepath.Join(assets, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(assets, fn, "bootstrap"), []byte(fn), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(assets, "agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assets, "agent", "mediascale-agent"), []byte("agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The CDK CLI turns asset metadata on by default; SAM needs it to find
	// each function's prebuilt bootstrap.
	app := awscdk.NewApp(&awscdk.AppProps{
		Outdir:  jsii.String(t.TempDir()),
		Context: &map[string]any{"aws:cdk:enable-asset-metadata": true},
	})
	s, err := New(app, Props{Env: env, Settings: settings, Pools: pools, AssetRoot: assets, RepoRoot: repoRoot})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// resources returns the template's resources of one type by logical id.
func resources(doc map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range doc["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

func props(r map[string]any) map[string]any { return r["Properties"].(map[string]any) }

func only(t *testing.T, doc map[string]any, typ string) map[string]any {
	t.Helper()
	rs := resources(doc, typ)
	if len(rs) != 1 {
		t.Fatalf("want one %s, got %d", typ, len(rs))
	}
	for _, r := range rs {
		return r
	}
	return nil
}

func TestNodeTablePerEnvironment(t *testing.T) {
	cases := []struct {
		env       string
		pitr      bool
		protect   bool
		retention string
	}{
		{"dev", false, false, "Delete"},
		{"staging", true, false, "Delete"},
		{"prod", true, true, "Retain"},
	}
	for _, tc := range cases {
		t.Run("the "+tc.env+" table is on-demand, encrypted, expiring, and protected as the environment asks", func(t *testing.T) {
			doc, tmpl := synth(t, tc.env)
			if n := len(resources(doc, "AWS::DynamoDB::GlobalTable")); n != 0 {
				t.Fatalf("template has %d GlobalTables; moto and the design want AWS::DynamoDB::Table", n)
			}
			tmpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
				"BillingMode":             "PAY_PER_REQUEST",
				"KeySchema":               []any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}, map[string]any{"AttributeName": "sk", "KeyType": "RANGE"}},
				"TimeToLiveSpecification": map[string]any{"AttributeName": "purgeAt", "Enabled": true},
				"SSESpecification":        map[string]any{"SSEEnabled": true},
			})
			table := only(t, doc, "AWS::DynamoDB::Table")
			p := props(table)
			pitr := p["PointInTimeRecoverySpecification"].(map[string]any)["PointInTimeRecoveryEnabled"]
			if pitr != tc.pitr {
				t.Errorf("point-in-time recovery = %v, want %v", pitr, tc.pitr)
			}
			if got, _ := p["DeletionProtectionEnabled"].(bool); got != tc.protect {
				t.Errorf("deletion protection = %v, want %v", got, tc.protect)
			}
			if table["DeletionPolicy"] != tc.retention {
				t.Errorf("deletion policy = %v, want %s", table["DeletionPolicy"], tc.retention)
			}
		})
	}
}

func TestPoolConfigIsPublishedAsValidatedJSON(t *testing.T) {
	doc, _ := synth(t, "dev")
	params := map[string]map[string]any{}
	for _, r := range resources(doc, "AWS::SSM::Parameter") {
		params[props(r)["Name"].(string)] = props(r)
	}
	if len(params) != 2 || params["/mediascale/dev/table"] == nil {
		t.Fatalf("parameters %v: want the pools and the table's name", params)
	}
	// The table's name, for dispatchers in other regions.
	if ref, _ := params["/mediascale/dev/table"]["Value"].(map[string]any); ref == nil || !strings.HasPrefix(fmt.Sprint(ref["Ref"]), "NodeTable") {
		t.Fatalf("table parameter = %v", params["/mediascale/dev/table"]["Value"])
	}
	param := params["/mediascale/dev/pools"]
	if param == nil {
		t.Fatalf("no /mediascale/dev/pools parameter in %v", params)
	}
	// Managed subnets and launch templates are references CloudFormation
	// fills in; stand in for it with ids of the right shape.
	value := resolveJoin(t, param["Value"], map[string]string{
		"AWS::EC2::Subnet": "subnet-0123456789abcde", "AWS::EC2::LaunchTemplate": "lt-0123456789abcde", "AWS::Route53::HostedZone": "z0123456789abcde",
		"AWS::ElasticLoadBalancingV2::Listener":    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/voice/0123456789abcdef/",
		"AWS::ElasticLoadBalancingV2::TargetGroup": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/voice/0123456789abcdef",
	}, doc)
	f, err := pool.ParseJSON([]byte(value))
	if err != nil {
		t.Fatalf("published value does not parse back: %v\n%s", err, value)
	}
	if f.Environment != "dev" || len(f.Pools) != 2 {
		t.Fatalf("published config = %s with %d pools", f.Environment, len(f.Pools))
	}
	live, _ := f.Find("live-rtmp-use1")
	if !strings.HasPrefix(live.Placement[0].Subnet, "subnet-0123456789abcde") || !strings.HasPrefix(live.LaunchTemplate.ID, "lt-0123456789abcde") || live.LaunchTemplate.Version != "1" {
		t.Fatalf("managed ids were not replaced by references: %+v %+v", live.Placement, live.LaunchTemplate)
	}
}

// resolveJoin evaluates a string or Fn::Join the way CloudFormation would,
// with each Ref replaced by the stand-in prefix for its resource's type plus
// two hex digits naming the resource, and each GetAtt LatestVersionNumber
// by "1".
func resolveJoin(t *testing.T, v any, standIns map[string]string, doc map[string]any) string {
	t.Helper()
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok {
			typ := doc["Resources"].(map[string]any)[ref].(map[string]any)["Type"].(string)
			ids := make([]string, 0)
			for id := range doc["Resources"].(map[string]any) {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			id := standIns[typ] + fmt.Sprintf("%02x", sort.SearchStrings(ids, ref))
			if typ == "AWS::Route53::HostedZone" {
				id = strings.ToUpper(id)
			}
			return id
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok && ga[1] == "LatestVersionNumber" {
			return "1"
		}

		if j, ok := x["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, resolveJoin(t, p, standIns, doc))
			}
			return strings.Join(parts, j[0].(string))
		}
	}
	t.Fatalf("cannot resolve %v", v)
	return ""
}

func TestFunctionsAreArmAl2023TracedJSONLoggedWithOwnRoles(t *testing.T) {
	doc, tmpl := synth(t, "dev")
	fns := resources(doc, "AWS::Lambda::Function")
	if len(fns) != len(FunctionNames()) {
		t.Fatalf("template has %d functions, want %d", len(fns), len(FunctionNames()))
	}
	roles := map[string]bool{}
	for id, fn := range fns {
		p := props(fn)
		if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v handler %v", id, p["Runtime"], p["Handler"])
		}
		if archs := p["Architectures"].([]any); len(archs) != 1 || archs[0] != "arm64" {
			t.Errorf("%s: architectures %v", id, archs)
		}
		if p["TracingConfig"].(map[string]any)["Mode"] != "Active" {
			t.Errorf("%s: tracing %v", id, p["TracingConfig"])
		}
		if p["LoggingConfig"].(map[string]any)["LogFormat"] != "JSON" {
			t.Errorf("%s: log format %v", id, p["LoggingConfig"])
		}
		role := p["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
		if roles[role] {
			t.Errorf("%s shares role %s", id, role)
		}
		roles[role] = true
		vars := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		for _, k := range []string{"MEDIASCALE_TABLE", "MEDIASCALE_POOLS_PARAMETER", "MEDIASCALE_ENV"} {
			if vars[k] == nil {
				t.Errorf("%s: environment variable %s is not set", id, k)
			}
		}
		if fn["Metadata"].(map[string]any)["aws:asset:property"] != "Code" {
			t.Errorf("%s: no asset metadata for its code", id)
		}
	}
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"FunctionName": "mediascale-dev-trigger",
		"Environment": map[string]any{"Variables": map[string]any{
			"MEDIASCALE_POOLS_PARAMETER": map[string]any{"Ref": assertions.Match_AnyValue()},
		}},
	})
}

// policyActions collects the actions each role's policies allow, keyed by
// role logical id.
func policyActions(doc map[string]any) map[string][]string {
	out := map[string][]string{}
	for _, pol := range resources(doc, "AWS::IAM::Policy") {
		p := props(pol)
		for _, r := range p["Roles"].([]any) {
			role := r.(map[string]any)["Ref"].(string)
			for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				switch a := st.(map[string]any)["Action"].(type) {
				case string:
					out[role] = append(out[role], a)
				case []any:
					for _, x := range a {
						out[role] = append(out[role], x.(string))
					}
				}
			}
		}
	}
	for r := range out {
		sort.Strings(out[r])
	}
	return out
}

func TestEachRoleHasOnlyTheActionsItsFunctionCalls(t *testing.T) {
	doc, _ := synth(t, "dev")
	base := "logs:CreateLogStream logs:PutLogEvents ssm:GetParameter xray:PutTelemetryRecords xray:PutTraceSegments"
	const elbActions = "elasticloadbalancing:DeregisterTargets elasticloadbalancing:DescribeTargetHealth elasticloadbalancing:ModifyListener elasticloadbalancing:RegisterTargets"
	// What Lambda needs to put a function's network interfaces in the VPC.
	const vpcActions = "ec2:AssignPrivateIpAddresses ec2:CreateNetworkInterface ec2:DeleteNetworkInterface ec2:DescribeNetworkInterfaces ec2:DescribeSubnets ec2:UnassignPrivateIpAddresses"
	want := map[string]string{
		"Trigger":   "cloudwatch:DescribeAlarms cloudwatch:GetMetricData dynamodb:DeleteItem dynamodb:GetItem dynamodb:PutItem dynamodb:Query dynamodb:UpdateItem states:StartExecution",
		"Plan":      "cloudwatch:GetMetricData dynamodb:DeleteItem dynamodb:PutItem dynamodb:Query dynamodb:UpdateItem ec2:TerminateInstances",
		"Drain":     "dynamodb:GetItem dynamodb:Query dynamodb:UpdateItem ec2:TerminateInstances " + elbActions + " " + vpcActions + " route53:ChangeResourceRecordSets route53:ListResourceRecordSets ssm:SendCommand",
		"Provision": "dynamodb:GetItem dynamodb:UpdateItem ec2:CreateTags ec2:DescribeInstances ec2:RunInstances ec2:StartInstances ec2:StopInstances iam:PassRole",
		"Deploy":    "dynamodb:GetItem dynamodb:UpdateItem ssm:GetCommandInvocation ssm:SendCommand",
		"Probe":     "dynamodb:GetItem dynamodb:UpdateItem " + vpcActions,
		"Shift":     "cloudwatch:DescribeAlarms cloudwatch:GetMetricData dynamodb:GetItem dynamodb:Query dynamodb:UpdateItem " + elbActions + " route53:ChangeResourceRecordSets route53:ListResourceRecordSets",
		"Rollback":  "dynamodb:GetItem dynamodb:Query dynamodb:UpdateItem ec2:DescribeInstances ec2:TerminateInstances " + elbActions + " route53:ChangeResourceRecordSets route53:ListResourceRecordSets",
		"Release":   "dynamodb:DeleteItem dynamodb:GetItem dynamodb:Query dynamodb:UpdateItem",
		"Forecast":  "cloudwatch:GetMetricData dynamodb:PutItem",
		"Dispatch":  "dynamodb:Query",
		"Heal":      "dynamodb:Query dynamodb:UpdateItem ec2:TerminateInstances " + elbActions + " " + vpcActions + " route53:ChangeResourceRecordSets route53:ListResourceRecordSets",
		"Reconcile": "cloudwatch:PutMetricData dynamodb:DeleteItem dynamodb:GetItem dynamodb:Query dynamodb:UpdateItem ec2:DescribeInstances ec2:TerminateInstances " + elbActions + " route53:ChangeResourceRecordSets route53:ListResourceRecordSets states:DescribeExecution",
	}
	actions := policyActions(doc)
	for fn, extra := range want {
		t.Run("the "+fn+" role", func(t *testing.T) {
			var role string
			for id := range resources(doc, "AWS::IAM::Role") {
				if strings.HasPrefix(id, fn+"FunctionRole") {
					role = id
				}
			}
			uniq := map[string]bool{}
			for _, a := range actions[role] {
				uniq[a] = true
			}
			var got []string
			for a := range uniq {
				got = append(got, a)
			}
			sort.Strings(got)
			exp := strings.Fields(base + " " + extra)
			sort.Strings(exp)
			if strings.Join(got, " ") != strings.Join(exp, " ") {
				t.Fatalf("actions:\n got %s\nwant %s", strings.Join(got, " "), strings.Join(exp, " "))
			}
		})
	}
}

func TestSettingsAreCheckedWithTheirPath(t *testing.T) {
	envs := cdkContext(t)["environments"]
	cases := []struct {
		name string
		env  string
		edit func(m map[string]any)
		want string
	}{
		{"an unknown environment names the ones there are", "qa", nil, "environments.qa: no such environment (have dev, devusw2, prod, staging)"},
		{"an unknown settings field is refused", "dev", func(m map[string]any) { m["vpcid"] = "x" }, `environments.dev: json: unknown field "vpcid"`},
		{"a malformed account is refused", "dev", func(m map[string]any) { m["account"] = "12" }, "environments.dev.account"},
		{"a retention CloudWatch does not offer is refused", "dev", func(m map[string]any) { m["logRetentionDays"] = 10 }, "environments.dev.logRetentionDays"},
		{"function subnets without a VPC are refused", "dev", func(m map[string]any) {
			m["network"] = map[string]any{"functionSubnets": []string{"subnet-0123456789abcdef0"}}
		}, "environments.dev.network.vpcId: required"},
		{"a VPC without function subnets is refused", "staging", func(m map[string]any) {
			m["network"].(map[string]any)["functionSubnets"] = []string{}
		}, "environments.staging.network.functionSubnets: required"},
		{"a malformed node security group is refused", "prod", func(m map[string]any) {
			m["network"].(map[string]any)["nodeSecurityGroups"] = []string{"default"}
		}, "environments.prod.network.nodeSecurityGroups[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(envs)
			var copyEnvs map[string]map[string]any
			_ = json.Unmarshal(raw, &copyEnvs)
			if tc.edit != nil {
				tc.edit(copyEnvs[tc.env])
			}
			_, err := SettingsFor(copyEnvs, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSettingsOverriddenOnTheCommandLineAreRead(t *testing.T) {
	raw, _ := json.Marshal(cdkContext(t)["environments"])
	s, err := SettingsFor(string(raw), "staging")
	if err != nil || s.Network.VpcID != "vpc-0b1b2c3d4e5f60001" {
		t.Fatalf("settings from a JSON string: %+v, %v", s, err)
	}
}

func TestPoolsMustBeReachableFromTheFunctions(t *testing.T) {
	dev, err := pool.LoadFile(filepath.Join(repoRoot, "infra/config/dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	staging, err := pool.LoadFile(filepath.Join(repoRoot, "infra/config/staging.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vpc := Network{VpcID: "vpc-0123456789abcdef0", FunctionSubnets: []string{"subnet-0123456789abcdef0"}}
	cases := []struct {
		name    string
		env     string
		network Network
		pools   pool.File
		want    string
	}{
		{"pools in subnets of their own need the VPC named", "staging", Network{}, staging, "pools[0].placement[0].subnet is subnet-0b1b2c3d4e5f60001, in a VPC the stack does not know"},
		{"pools with launch templates of their own need their security groups named", "staging", vpc, staging, "pools[0].launchTemplate.id is lt-0b1b2c3d4e5f60001: set context environments.staging.network.nodeSecurityGroups"},
		{"managed subnets cannot go into a named VPC", "dev", vpc, dev, "pools[0].placement[0].subnet is managed, but context environments.dev.network.vpcId is set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPools(tc.env, Settings{Config: tc.env + ".yaml", Network: tc.network}, tc.pools)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestProbeDrainAndHealRunInThePoolsVpcAndTheNodesAdmitThem(t *testing.T) {
	for _, env := range []string{"dev", "staging"} {
		t.Run(env, func(t *testing.T) {
			doc, _ := synth(t, env)
			for id, fn := range resources(doc, "AWS::Lambda::Function") {
				vpc, inVpc := props(fn)["VpcConfig"].(map[string]any)
				wantVpc := strings.HasPrefix(id, "ProbeFunction") || strings.HasPrefix(id, "DrainFunction") || strings.HasPrefix(id, "HealFunction")
				if inVpc != wantVpc {
					t.Fatalf("%s: in a VPC %v, want %v", id, inVpc, wantVpc)
				}
				if !inVpc {
					continue
				}
				groups := fmt.Sprint(vpc["SecurityGroupIds"])
				if !strings.Contains(groups, "FunctionGroup") || len(vpc["SubnetIds"].([]any)) < 2 {
					t.Fatalf("%s: VpcConfig %v, want the function group and a subnet per zone", id, vpc)
				}
				deps := fmt.Sprint(fn["DependsOn"])
				if !strings.Contains(deps, "VpcAccess") {
					t.Fatalf("%s is created before its network-interface permissions: DependsOn %s", id, deps)
				}
			}
			// Every way into a node security group from the functions names
			// the function group, never an address range.
			admitted := map[string]bool{}
			for _, sg := range resources(doc, "AWS::EC2::SecurityGroup") {
				for _, in := range asList(props(sg)["SecurityGroupIngress"]) {
					rule := in.(map[string]any)
					if strings.Contains(fmt.Sprint(rule["SourceSecurityGroupId"]), "FunctionGroup") {
						admitted[fmt.Sprint(rule["FromPort"])] = true
					}
				}
			}
			for _, in := range resources(doc, "AWS::EC2::SecurityGroupIngress") {
				if strings.Contains(fmt.Sprint(props(in)["SourceSecurityGroupId"]), "FunctionGroup") {
					admitted[fmt.Sprint(props(in)["FromPort"])] = true
				}
			}
			if !admitted["8080"] {
				t.Fatalf("no node security group admits the functions on the health port 8080: %v", admitted)
			}
			if env == "staging" && (!admitted["1935"] || len(resources(doc, "AWS::EC2::VPC")) != 0) {
				t.Fatalf("staging: admitted %v, VPCs created %d; want the media port too and no VPC of the stack's own", admitted, len(resources(doc, "AWS::EC2::VPC")))
			}
		})
	}
}

// asList reads an optional template list.
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestPoolsMustMatchTheEnvironment(t *testing.T) {
	f, err := pool.LoadFile(filepath.Join(repoRoot, "infra/config/dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPools("prod", Settings{Config: "dev.yaml"}, f); err == nil || !strings.Contains(err.Error(), `configured for environment "prod"`) {
		t.Fatalf("a dev file passed as prod: %v", err)
	}
	if err := CheckPools("dev", Settings{Config: "dev.yaml", Region: "eu-west-1"}, f); err == nil || !strings.Contains(err.Error(), "pools[0].region") {
		t.Fatalf("pools in another region passed: %v", err)
	}
}

func TestNagFindsNothingUnexplained(t *testing.T) {
	for _, env := range []string{"dev", "devusw2", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			s := build(t, env)
			doc, _ := json.Marshal(assertions.Template_FromStack(s.Stack, nil).ToJSON())
			notes := assertions.Annotations_FromStack(s.Stack)
			any := assertions.Match_StringLikeRegexp(jsii.String(".*"))
			for _, found := range append(*notes.FindError(jsii.String("*"), any), *notes.FindWarning(jsii.String("*"), any)...) {
				if text := fmt.Sprint(found.Entry.Data); strings.Contains(text, "AwsSolutions") || strings.Contains(text, "CdkNag") {
					t.Errorf("%s: %s", *found.Id, text)
				}
			}
			// Every suppression that reached the template carries a reason
			// a reviewer can read.
			type metadata struct {
				CdkNag struct {
					Rules []struct{ ID, Reason string } `json:"rules_to_suppress"`
				} `json:"cdk_nag"`
			}
			var tmpl struct {
				Metadata  metadata
				Resources map[string]struct{ Metadata metadata }
			}
			if err := json.Unmarshal(doc, &tmpl); err != nil {
				t.Fatal(err)
			}
			all := map[string]metadata{"the stack": tmpl.Metadata}
			for id, r := range tmpl.Resources {
				all[id] = r.Metadata
			}
			suppressed := 0
			for id, m := range all {
				for _, rule := range m.CdkNag.Rules {
					suppressed++
					if len(strings.Fields(rule.Reason)) < 8 {
						t.Errorf("%s: suppression of %s has no real reason: %q", id, rule.ID, rule.Reason)
					}
				}
			}
			if suppressed == 0 {
				t.Fatal("no suppression reached the template: is cdk-nag running?")
			}
		})
	}
}

func TestNagFailsAnUnsuppressedFinding(t *testing.T) {
	s := build(t, "staging")
	awsec2.NewCfnSecurityGroup(s.Stack, jsii.String("OpenToTheWorld"), &awsec2.CfnSecurityGroupProps{
		GroupDescription: jsii.String("every port open"),
		SecurityGroupIngress: &[]interface{}{&awsec2.CfnSecurityGroup_IngressProperty{
			IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(0), ToPort: jsii.Number(65535), CidrIp: jsii.String("0.0.0.0/0"),
		}},
	})
	assertions.Template_FromStack(s.Stack, nil)
	errs := assertions.Annotations_FromStack(s.Stack).FindError(jsii.String("/mediascale-staging/OpenToTheWorld"),
		assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-EC23")))
	if len(*errs) == 0 {
		t.Fatal("cdk-nag let a security group open to the world through")
	}
}

func TestEveryStarResourceIsOneAwsRequires(t *testing.T) {
	// Actions AWS authorises only on "*" (no resource-level permissions).
	allowed := map[string]bool{
		"xray:PutTraceSegments": true, "xray:PutTelemetryRecords": true, "xray:GetSamplingRules": true, "xray:GetSamplingTargets": true,
		"cloudwatch:GetMetricData": true, "cloudwatch:DescribeAlarms": true, "cloudwatch:PutMetricData": true,
		"ec2:DescribeInstances": true, "ec2:DescribeNetworkInterfaces": true, "ec2:DescribeSubnets": true,
		"ssm:GetCommandInvocation": true, "elasticloadbalancing:DescribeTargetHealth": true,
		"logs:CreateLogDelivery": true, "logs:GetLogDelivery": true, "logs:UpdateLogDelivery": true, "logs:DeleteLogDelivery": true,
		"logs:ListLogDeliveries": true, "logs:PutResourcePolicy": true, "logs:DescribeResourcePolicies": true, "logs:DescribeLogGroups": true,
	}
	seen := 0
	for _, env := range []string{"dev", "prod"} {
		doc, _ := synth(t, env)
		for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::Role"} {
			for id, r := range resources(doc, typ) {
				raw, _ := json.Marshal(props(r))
				var p struct {
					PolicyDocument struct{ Statement []map[string]any }
					Policies       []struct {
						PolicyDocument struct{ Statement []map[string]any }
					}
				}
				_ = json.Unmarshal(raw, &p)
				statements := p.PolicyDocument.Statement
				for _, inline := range p.Policies {
					statements = append(statements, inline.PolicyDocument.Statement...)
				}
				for _, st := range statements {
					if fmt.Sprint(st["Resource"]) != "*" {
						continue
					}
					seen++
					for _, a := range asStrings(st["Action"]) {
						if !allowed[a] {
							t.Errorf("%s %s: %s on \"*\" is not an action AWS requires \"*\" for", env, id, a)
						}
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no statement on \"*\" found: the test read nothing")
	}
}

// asStrings reads a policy field that is one string or a list of them.
func asStrings(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	for _, x := range asList(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func TestTheControllerRunsEveryMinuteOverEveryPool(t *testing.T) {
	doc, _ := synth(t, "dev")
	var found bool
	for _, r := range resources(doc, "AWS::Events::Rule") {
		p := props(r)
		if p["Name"] != "mediascale-dev-control" {
			continue
		}
		found = true
		targets := p["Targets"].([]any)
		arn, _ := json.Marshal(targets[0].(map[string]any)["Arn"])
		retry := targets[0].(map[string]any)["RetryPolicy"].(map[string]any)
		if p["ScheduleExpression"] != "rate(1 minute)" || len(targets) != 1 || !strings.Contains(string(arn), "TriggerFunction") || retry["MaximumRetryAttempts"] != float64(0) {
			t.Fatalf("control rule: %v, target %s, retry %v", p["ScheduleExpression"], arn, retry)
		}
	}
	if !found {
		t.Fatal("no mediascale-dev-control rule")
	}
}

// The trigger starts the pressure loop by the ARN it builds from the
// loop's name, and may start exactly the three machines.
func TestTheTriggerStartsThePressureLoopItNames(t *testing.T) {
	doc, _ := synth(t, "dev")
	var name string
	for _, r := range resources(doc, "AWS::StepFunctions::StateMachine") {
		if n := props(r)["StateMachineName"]; n == PressureMachineName("dev") {
			name = n.(string)
		}
	}
	if name == "" {
		t.Fatal("no pressure loop state machine")
	}
	for id, r := range resources(doc, "AWS::Lambda::Function") {
		if !strings.HasPrefix(id, "TriggerFunction") {
			continue
		}
		env := props(r)["Environment"].(map[string]any)["Variables"].(map[string]any)
		arn, _ := json.Marshal(env["MEDIASCALE_PRESSURE_MACHINE"])
		if !strings.Contains(string(arn), ":stateMachine:"+name+`"`) || !strings.Contains(string(arn), `"AWS::Region"`) {
			t.Fatalf("the trigger names the loop %s, want the machine %s in its own region", arn, name)
		}
	}
	for _, r := range resources(doc, "AWS::IAM::Policy") {
		for _, st := range props(r)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			s := st.(map[string]any)
			if s["Sid"] != "StartScaling" {
				continue
			}
			res := asList(s["Resource"])
			raw, _ := json.Marshal(res)
			if len(res) != 3 || !strings.Contains(string(raw), ":stateMachine:"+name) {
				t.Fatalf("the trigger may start %s, want the scale-out, scale-in and pressure machines", raw)
			}
			return
		}
	}
	t.Fatal("no StartScaling statement")
}

func TestTheDispatcherTakesOnlySignedRequestsFromHoldersOfItsClientPolicy(t *testing.T) {
	doc, _ := synth(t, "dev")
	urls := resources(doc, "AWS::Lambda::Url")
	if len(urls) != 1 {
		t.Fatalf("%d function URLs, want the dispatcher's alone", len(urls))
	}
	for _, u := range urls {
		p := props(u)
		target, _ := json.Marshal(p["TargetFunctionArn"])
		if p["AuthType"] != "AWS_IAM" || !strings.Contains(string(target), "DispatchFunction") {
			t.Fatalf("function URL: %v", p)
		}
	}
	// No resource policy opens the URL to anyone: callers need the
	// managed policy, which allows the one action on the one function.
	for id, r := range resources(doc, "AWS::Lambda::Permission") {
		if strings.Contains(id, "Dispatch") {
			t.Fatalf("%s opens the dispatcher: %v", id, props(r))
		}
	}
	var found bool
	for _, r := range resources(doc, "AWS::IAM::ManagedPolicy") {
		p := props(r)
		if p["ManagedPolicyName"] != DispatchClientsPolicyName("dev") {
			continue
		}
		found = true
		raw, _ := json.Marshal(p["PolicyDocument"])
		if !strings.Contains(string(raw), `"Action":"lambda:InvokeFunctionUrl"`) || !strings.Contains(string(raw), "DispatchFunction") ||
			!strings.Contains(string(raw), `"lambda:FunctionUrlAuthType":"AWS_IAM"`) {
			t.Fatalf("clients policy: %s", raw)
		}
	}
	if !found {
		t.Fatalf("no %s policy", DispatchClientsPolicyName("dev"))
	}
}

func TestTheMediaDocumentInstallsTheNodeAgentFromTheStacksAssets(t *testing.T) {
	doc, _ := synth(t, "dev")
	var content map[string]any
	for _, r := range resources(doc, "AWS::SSM::Document") {
		if p := props(r); p["Name"] == "mediascale-dev-media-rtmp" {
			content = p["Content"].(map[string]any)
		}
	}
	if content == nil {
		t.Fatal("no media document")
	}
	steps := content["mainSteps"].([]any)
	if len(steps) != 2 || steps[0].(map[string]any)["name"] != "installNginxRtmp" || steps[1].(map[string]any)["name"] != "installAgent" {
		t.Fatalf("steps %v: want the media server, then the agent", steps)
	}
	agentStep, _ := json.Marshal(steps[1])
	for _, want := range []string{"s3://", "cdk-hnb659fds-assets", "{{mediascaleNode}}", "{{mediascaleTable}}", "{{global:REGION}}", "systemctl restart mediascale-agent"} {
		if !strings.Contains(string(agentStep), want) {
			t.Fatalf("the agent step lacks %q", want)
		}
	}
	params := content["parameters"].(map[string]any)
	for _, name := range []string{"mediascaleNode", "mediascalePool", "mediascaleTable", "mediascaleAgentInterval", "mediascaleHighResolution"} {
		if p, ok := params[name].(map[string]any); !ok || p["allowedPattern"] == nil {
			t.Fatalf("parameter %s is not declared with a pattern: %v", name, params[name])
		}
	}
	// The node role: the agent's three rights, each as narrow as AWS allows.
	var nodeRole string
	for id := range resources(doc, "AWS::IAM::Role") {
		if strings.HasPrefix(id, "NodeRole") {
			nodeRole = id
		}
	}
	got := policyActions(doc)[nodeRole]
	sort.Strings(got)
	if strings.Join(got, " ") != "cloudwatch:PutMetricData dynamodb:UpdateItem s3:GetObject" {
		t.Fatalf("node role actions %v", got)
	}
}

func TestAFallbackMustBeAnotherEnvironmentsPoolInItsRegionWithTheSameClasses(t *testing.T) {
	envs := cdkContext(t)["environments"]
	settings, err := SettingsFor(envs, "dev")
	if err != nil {
		t.Fatal(err)
	}
	usw2 := pool.Fallback{Region: "us-west-2", Environment: "devusw2", Pool: "live-rtmp-usw2"}
	same := func(*pool.Fallback) {}
	asShipped := func(*Settings, *pool.File) {}
	cases := []struct {
		name     string
		fallback func(*pool.Fallback)
		remote   func(*Settings, *pool.File)
		want     string
	}{
		{"the shipped fallback of dev's live pool passes", same, asShipped, ""},
		{"a fallback in this same environment fails", func(f *pool.Fallback) { f.Environment = "dev" }, asShipped,
			"fallbacks[0].environment: dev is this environment"},
		{"an environment cdk.json does not configure fails", func(f *pool.Fallback) { f.Environment = "deveuw1" }, asShipped,
			"fallbacks[0].environment: context environments.deveuw1: no such environment"},
		{"a region the environment is not deployed in fails", func(f *pool.Fallback) { f.Region = "eu-west-1" }, asShipped,
			"fallbacks[0].region: environment devusw2 is deployed in us-west-2, not eu-west-1"},
		{"a pool the environment does not have fails", func(f *pool.Fallback) { f.Pool = "live-rtmp-usw9" }, asShipped,
			`fallbacks[0].pool: devusw2 (infra/config/devusw2.yaml) has no pool "live-rtmp-usw9"`},
		{"a fallback without one of the pool's classes fails", same, func(_ *Settings, f *pool.File) {
			f.Pools[0].Admission.Classes = f.Pools[0].Admission.Classes[:2]
		}, `fallbacks[0].pool: live-rtmp-usw2 of devusw2 has no admission class "viewer"`},
		{"a fallback in another account fails", same, func(s *Settings, _ *pool.File) { s.Account = "123456789012" },
			`deployed in account "123456789012"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := pool.LoadFile(filepath.Join(repoRoot, settings.Config))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Pools[0].Admission.Fallbacks) != 1 || f.Pools[0].Admission.Fallbacks[0] != usw2 {
				t.Fatalf("dev's live pool falls back on %v", f.Pools[0].Admission.Fallbacks)
			}
			tc.fallback(&f.Pools[0].Admission.Fallbacks[0])
			other := func(env string) (Settings, pool.File, error) {
				s, err := SettingsFor(envs, env)
				if err != nil {
					return Settings{}, pool.File{}, err
				}
				remote, err := pool.LoadFile(filepath.Join(repoRoot, s.Config))
				if err != nil {
					return Settings{}, pool.File{}, err
				}
				tc.remote(&s, &remote)
				return s, remote, nil
			}
			err = CheckFallbacks("dev", settings, f, other)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTheDispatcherReadsOnlyItsFallbacksConfigurationAndTableInTheirRegion(t *testing.T) {
	doc, _ := synth(t, "dev")
	var got []string
	for _, pol := range resources(doc, "AWS::IAM::Policy") {
		for _, st := range props(pol)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := st.(map[string]any)
			if sid, _ := st["Sid"].(string); strings.HasPrefix(sid, "ReadFallback") {
				raw, _ := json.Marshal(st["Resource"])
				got = append(got, fmt.Sprintf("%s %v %s", sid, st["Action"], raw))
			}
		}
	}
	sort.Strings(got)
	text := strings.Join(got, "\n")
	for _, want := range []string{
		`ReadFallbackConfig ssm:GetParameter`, `:ssm:us-west-2:`, `:parameter/mediascale/devusw2/pools"`, `:parameter/mediascale/devusw2/table"`,
		`ReadFallbackNodes dynamodb:Query`, `:dynamodb:us-west-2:`, `:table/mediascale-devusw2-*"`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("fallback statements lack %s:\n%s", want, text)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d fallback statements:\n%s", len(got), text)
	}
}

func TestTheMediaImageIsBakedByTheDeploysOwnScriptAndPinnedByLaunchTemplateVersion(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			doc, _ := synth(t, env)
			component := props(only(t, doc, "AWS::ImageBuilder::Component"))
			raw, _ := json.Marshal(component["Data"])
			data := string(raw)
			for _, want := range []string{"export MEDIASCALE_BAKE=1", "make -s modules", "action: S3Download", "destination: /usr/local/bin/mediascale-agent",
				"test -s /usr/lib64/nginx/modules/ngx_rtmp_module.so"} {
				if !strings.Contains(data, want) {
					t.Fatalf("component document lacks %q:\n%s", want, data)
				}
			}
			recipe := props(only(t, doc, "AWS::ImageBuilder::ImageRecipe"))
			if recipe["ParentImage"] != "ssm:"+amiParameter || recipe["Version"] != component["Version"] {
				t.Fatalf("recipe %v", recipe)
			}
			infra := props(only(t, doc, "AWS::ImageBuilder::InfrastructureConfiguration"))
			if fmt.Sprint(infra["InstanceTypes"]) != "[c7g.large]" || infra["TerminateInstanceOnFailure"] != true {
				t.Fatalf("infrastructure %v", infra)
			}
			dist := props(only(t, doc, "AWS::ImageBuilder::DistributionConfiguration"))["Distributions"].([]any)[0].(map[string]any)
			raw, _ = json.Marshal(dist)
			if !strings.Contains(string(raw), `"ParameterName":"/mediascale/`+env+`/media-image"`) {
				t.Fatalf("distribution does not write the image parameter: %s", raw)
			}
			// prod's pools bring their own launch templates: each gets a
			// new version, never a new default; dev's are the stack's own.
			lts := strings.Count(string(raw), `"LaunchTemplateId"`)
			if env == "prod" && (lts != 2 || !strings.Contains(string(raw), `"SetDefaultVersion":false`)) || env == "dev" && lts != 0 {
				t.Fatalf("%s distribution's launch templates: %s", env, raw)
			}
			pipeline := props(only(t, doc, "AWS::ImageBuilder::ImagePipeline"))
			if pipeline["Status"] != "ENABLED" {
				t.Fatalf("pipeline %v", pipeline)
			}
		})
	}
	// A changed script is a new version; the same one is the same.
	if imageVersion([]byte("a"), "h") == imageVersion([]byte("b"), "h") || imageVersion([]byte("a"), "h") != imageVersion([]byte("a"), "h") {
		t.Fatal("the image version does not follow what it bakes")
	}
}
