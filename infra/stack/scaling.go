package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/compute"
	"github.com/mediascale/mediascale/shared/deploy"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/traffic"
)

// MediaScript is the install script of the RTMP media server, relative to
// the repository root; the SSM document runs it on every new RTMP node.
const MediaScript = "infra/media/install-nginx-rtmp.sh"

// DrainScript makes an RTMP node refuse new sessions; the drain step runs it.
const DrainScript = "infra/media/drain-nginx-rtmp.sh"

// mediaDocumentName is the SSM document an environment's RTMP pools deploy.
func mediaDocumentName(env string) string { return "mediascale-" + env + "-media-rtmp" }

// AgentScript installs the node agent as a systemd unit; the media
// document runs it after the media server is up.
const AgentScript = "infra/media/install-agent.sh"

// newMediaDocument defines the SSM Command document that installs
// nginx-rtmp and the node agent; its parameters are checked by pattern
// before the scripts run. The agent's binary is an asset of the stack,
// copied from the assets bucket: nodes download nothing else for it.
func (s *Stack) newMediaDocument(p Props) error {
	script, err := os.ReadFile(filepath.Join(p.RepoRoot, MediaScript))
	if err != nil {
		return fmt.Errorf("reading the media install script: %w", err)
	}
	agentScript, err := os.ReadFile(filepath.Join(p.RepoRoot, AgentScript))
	if err != nil {
		return fmt.Errorf("reading the agent install script: %w", err)
	}
	agent := awss3assets.NewAsset(s.Stack, jsii.String("NodeAgent"), &awss3assets.AssetProps{
		Path: jsii.String(filepath.Join(p.AssetRoot, "agent", "mediascale-agent")),
	})
	lines := []string{
		"export RTMP_PORT='{{rtmpPort}}'",
		"export HEALTH_PORT='{{healthPort}}'",
		"export MAX_CONNECTIONS='{{maxConnections}}'",
	}
	lines = append(lines, strings.Split(strings.TrimRight(string(script), "\n"), "\n")...)
	agentLines := []string{
		"export AGENT_URL='" + *agent.S3ObjectUrl() + "'",
		"export AWS_REGION='{{global:REGION}}'",
		"export HEALTH_PORT='{{healthPort}}'",
		"export NODE='{{" + deploy.ParamNode + "}}'",
		"export POOL='{{" + deploy.ParamPool + "}}'",
		"export TABLE='{{" + deploy.ParamTable + "}}'",
		"export INTERVAL='{{" + deploy.ParamAgentInterval + "}}'",
		"export HIGH_RESOLUTION='{{" + deploy.ParamHighResolution + "}}'",
	}
	agentLines = append(agentLines, strings.Split(strings.TrimRight(string(agentScript), "\n"), "\n")...)
	number := func(desc, def string) map[string]any {
		return map[string]any{"type": "String", "description": desc, "default": def, "allowedPattern": "^[0-9]{1,5}$"}
	}
	text := func(desc, pattern string) map[string]any {
		return map[string]any{"type": "String", "description": desc, "allowedPattern": pattern}
	}
	awsssm.NewCfnDocument(s.Stack, jsii.String("MediaRtmpDocument"), &awsssm.CfnDocumentProps{
		Name:           jsii.String(mediaDocumentName(p.Env)),
		DocumentType:   jsii.String("Command"),
		DocumentFormat: jsii.String("JSON"),
		UpdateMethod:   jsii.String("NewVersion"),
		Content: map[string]any{
			"schemaVersion": "2.2",
			"description":   "mediascale: install and configure nginx with the RTMP module and its health endpoint, then the node agent",
			"parameters": map[string]any{
				"rtmpPort":                 number("RTMP listen port", "1935"),
				"healthPort":               number("port of /healthz and /stat", "8080"),
				"maxConnections":           number("worker connection cap", "2000"),
				deploy.ParamNode:           text("the node's id", "^n-[0-9a-z-]{1,64}$"),
				deploy.ParamPool:           text("the node's pool", "^[a-z][a-z0-9-]{2,38}[a-z0-9]$"),
				deploy.ParamTable:          text("the node table the agent writes its heartbeat to", "^[A-Za-z0-9_.-]{3,255}$"),
				deploy.ParamAgentInterval:  text("seconds between two agent reports", "^[0-9]{1,3}$"),
				deploy.ParamHighResolution: text("store the agent's metrics at one-second resolution", "^(true|false)$"),
			},
			"mainSteps": []any{
				map[string]any{
					"action": "aws:runShellScript", "name": "installNginxRtmp",
					"inputs": map[string]any{"runCommand": lines, "timeoutSeconds": "900"},
				},
				map[string]any{
					"action": "aws:runShellScript", "name": "installAgent",
					"inputs": map[string]any{"runCommand": agentLines, "timeoutSeconds": "120"},
				},
			},
		},
	})
	if s.nodeRole != nil {
		s.grantAgent(s.nodeRole, agent)
	}
	for _, pl := range p.Pools.Pools {
		if pl.Media == pool.MediaRTMP {
			s.newMediaImage(p, script, agent)
			break
		}
	}
	return nil
}

// grantAgent lets a node's agent fetch its binary, publish its pool's
// metrics and write its heartbeat: nothing more.
func (s *Stack) grantAgent(role awsiam.Role, agent awss3assets.Asset) {
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("FetchAgent"), Actions: jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(*agent.Bucket().ArnForObjects(agent.S3ObjectKey())),
	}))
	// PutMetricData has no resource-level permissions; the namespace
	// condition keeps nodes to mediascale's metrics.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("PublishLoad"), Actions: jsii.Strings("cloudwatch:PutMetricData"), Resources: jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": traffic.Namespace}},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("WriteHeartbeat"), Actions: jsii.Strings("dynamodb:UpdateItem"), Resources: jsii.Strings(*s.Table.TableArn()),
	}))
}

// newDrainDocument defines the SSM document that makes an RTMP node refuse
// new sessions while it keeps the ones it has.
func (s *Stack) newDrainDocument(p Props) error {
	script, err := os.ReadFile(filepath.Join(p.RepoRoot, DrainScript))
	if err != nil {
		return fmt.Errorf("reading the media drain script: %w", err)
	}
	awsssm.NewCfnDocument(s.Stack, jsii.String("MediaRtmpDrainDocument"), &awsssm.CfnDocumentProps{
		Name:           jsii.String(mediaDocumentName(p.Env) + "-drain"),
		DocumentType:   jsii.String("Command"),
		DocumentFormat: jsii.String("JSON"),
		UpdateMethod:   jsii.String("NewVersion"),
		Content: map[string]any{
			"schemaVersion": "2.2",
			"description":   "mediascale: make nginx-rtmp refuse new sessions and keep the live ones",
			"mainSteps": []any{map[string]any{
				"action": "aws:runShellScript", "name": "drainNginxRtmp",
				"inputs": map[string]any{"runCommand": strings.Split(strings.TrimRight(string(script), "\n"), "\n"), "timeoutSeconds": "120"},
			}},
		},
	})
	return nil
}

// newHostedZones creates the zones of pools whose hostedZoneId is
// "managed", one per record's parent domain.
func (s *Stack) newHostedZones(p Props) map[string]awsroute53.CfnHostedZone {
	zones := map[string]awsroute53.CfnHostedZone{}
	for _, pl := range p.Pools.Pools {
		r := pl.Traffic.Route53
		if r == nil || r.HostedZoneID != pool.Managed {
			continue
		}
		_, domain, _ := strings.Cut(r.RecordName, ".")
		if _, ok := zones[domain]; ok {
			continue
		}
		zones[domain] = awsroute53.NewCfnHostedZone(s.Stack, jsii.String("Zone"+pascal(strings.ReplaceAll(domain, ".", "-"))), &awsroute53.CfnHostedZoneProps{
			Name:             jsii.String(domain),
			HostedZoneConfig: &awsroute53.CfnHostedZone_HostedZoneConfigProperty{Comment: jsii.String("mediascale " + p.Env + " media records")},
		})
	}
	return zones
}

// newWorkflow defines one Standard state machine over the given functions,
// with its log group and the invoke permissions it needs.
func (s *Stack) newWorkflow(p Props, removal awscdk.RemovalPolicy, name string, functions []string,
	build func(arn map[string]string) (string, error)) (awsstepfunctions.StateMachine, error) {
	arns := map[string]string{}
	for _, fn := range functions {
		arns[fn] = *s.Functions[fn].FunctionArn()
	}
	def, err := build(arns)
	if err != nil {
		return nil, err
	}
	logs := awslogs.NewLogGroup(s.Stack, jsii.String(pascal(name)+"Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String(fmt.Sprintf("/aws/vendedlogs/states/mediascale-%s-%s", p.Env, name)),
		Retention:     logRetentions[p.Settings.LogRetentionDays],
		RemovalPolicy: removal,
	})
	sm := awsstepfunctions.NewStateMachine(s.Stack, jsii.String(pascal(name)), &awsstepfunctions.StateMachineProps{
		StateMachineName: jsii.String(fmt.Sprintf("mediascale-%s-%s", p.Env, name)),
		StateMachineType: awsstepfunctions.StateMachineType_STANDARD,
		DefinitionBody:   awsstepfunctions.DefinitionBody_FromString(jsii.String(def)),
		TracingEnabled:   jsii.Bool(true),
		Logs: &awsstepfunctions.LogOptions{
			Destination: logs, Level: awsstepfunctions.LogLevel_ALL, IncludeExecutionData: jsii.Bool(true),
		},
	})
	for _, fn := range functions {
		s.Functions[fn].GrantInvoke(sm)
	}
	return sm, nil
}

// newAlarms creates each pool's scale-out and scale-in alarms on the
// per-node metrics nodes publish in the Mediascale namespace (dimension
// Pool), scale-in over its longer window, and one
// EventBridge rule that sends every state change of the environment's
// scaling alarms to the trigger.
func (s *Stack) newAlarms(p Props) {
	for _, pl := range p.Pools.Pools {
		for _, dir := range []pool.Direction{pool.ScaleOut, pool.ScaleIn} {
			word := map[pool.Direction]string{pool.ScaleOut: "above", pool.ScaleIn: "below"}[dir]
			for _, m := range pool.Metrics {
				a := pl.Alarm(dir, m)
				awscloudwatch.NewCfnAlarm(s.Stack, jsii.String(pascal(pl.Name)+"Scale"+pascal(string(dir))+pascal(string(m))), &awscloudwatch.CfnAlarmProps{
					AlarmName:          jsii.String(pool.AlarmName(p.Env, pl.Name, dir, m)),
					AlarmDescription:   jsii.String(fmt.Sprintf("Scale %s %s: average %s %s %g over %d x %s", dir, pl.Name, a.What, word, a.Threshold, a.EvaluationPeriods, a.Period)),
					Namespace:          jsii.String(traffic.Namespace),
					MetricName:         jsii.String(a.MetricName),
					Dimensions:         &[]interface{}{&awscloudwatch.CfnAlarm_DimensionProperty{Name: jsii.String("Pool"), Value: jsii.String(pl.Name)}},
					Statistic:          jsii.String("Average"),
					Period:             jsii.Number(a.Period.D().Seconds()),
					EvaluationPeriods:  jsii.Number(float64(a.EvaluationPeriods)),
					Threshold:          jsii.Number(a.Threshold),
					ComparisonOperator: jsii.String(a.Comparison),
					TreatMissingData:   jsii.String(a.TreatMissingData),
				})
			}
		}
	}
	rule := awsevents.NewRule(s.Stack, jsii.String("AlarmRule"), &awsevents.RuleProps{
		RuleName:    jsii.String("mediascale-" + p.Env + "-alarms"),
		Description: jsii.String("State changes of mediascale " + p.Env + " scaling alarms, to the trigger"),
		EventPattern: &awsevents.EventPattern{
			// The account's own alarms only: the trigger refuses any
			// other too (events.Origin).
			Account:    &[]*string{awscdk.Aws_ACCOUNT_ID()},
			Source:     jsii.Strings("aws.cloudwatch"),
			DetailType: jsii.Strings("CloudWatch Alarm State Change"),
			Detail: &map[string]interface{}{
				"alarmName": []interface{}{map[string]interface{}{"prefix": "mediascale-" + p.Env + "-"}},
			},
		},
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(s.Functions["trigger"], &awseventstargets.LambdaFunctionProps{
		RetryAttempts: jsii.Number(8),
		MaxEventAge:   awscdk.Duration_Hours(jsii.Number(2)),
	}))
}

// newSchedules runs the functions that work on a clock.
func (s *Stack) newSchedules(p Props) {
	// The controller over every pool each minute: alarms are the fast
	// path, this is the guarantee. EventBridge sends an alarm's state
	// change once; a pool that stays overloaded after its first
	// execution, or that falls below min, moves no alarm again. A missed
	// tick is replaced by the next one a minute later: retrying an old one
	// would act on a stale picture.
	s.schedule(p, "Control", "control", "Runs the mediascale "+p.Env+" controller over every pool", awscdk.Duration_Minutes(jsii.Number(1)),
		"trigger", &awseventstargets.LambdaFunctionProps{RetryAttempts: jsii.Number(0), MaxEventAge: awscdk.Duration_Minutes(jsii.Number(1))})
	// The health checker every minute: with healing.failures checks in a
	// row, a broken node loses its traffic within that many minutes.
	s.schedule(p, "Heal", "heal", "Checks every serving mediascale "+p.Env+" node and replaces the unhealthy ones", awscdk.Duration_Minutes(jsii.Number(1)),
		"heal", &awseventstargets.LambdaFunctionProps{RetryAttempts: jsii.Number(0), MaxEventAge: awscdk.Duration_Minutes(jsii.Number(1))})
	s.schedule(p, "Reconcile", "reconcile", "Runs the mediascale "+p.Env+" reconciler", awscdk.Duration_Minutes(jsii.Number(5)),
		"reconcile", &awseventstargets.LambdaFunctionProps{RetryAttempts: jsii.Number(0)})
	// The forecaster every hour: its forecast reaches a day ahead, and a
	// pool's history moves an hour at a time.
	s.schedule(p, "Forecast", "forecast", "Forecasts every mediascale "+p.Env+" pool's load from its own history", awscdk.Duration_Hours(jsii.Number(1)),
		"forecast", &awseventstargets.LambdaFunctionProps{RetryAttempts: jsii.Number(2)})
}

// schedule is one rule, mediascale-<env>-<name>, that invokes a function
// at a fixed rate.
func (s *Stack) schedule(p Props, id, name, description string, every awscdk.Duration, fn string, target *awseventstargets.LambdaFunctionProps) {
	rule := awsevents.NewRule(s.Stack, jsii.String(id+"Schedule"), &awsevents.RuleProps{
		RuleName:    jsii.String("mediascale-" + p.Env + "-" + name),
		Description: jsii.String(description),
		Schedule:    awsevents.Schedule_Rate(every),
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(s.Functions[fn], target))
}

// pressureMachineArn is the pressure loop's ARN from its name (see
// PressureMachineName).
func pressureMachineArn(env string) string {
	return fmt.Sprintf("arn:%s:states:%s:%s:stateMachine:%s", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), PressureMachineName(env))
}

// grant adds the non-table permissions of each function.
func (s *Stack) grant(p Props, machines ...awsstepfunctions.StateMachine) {
	stmt := func(fn, sid string, actions []string, resources []string, conditions map[string]any) {
		props := &awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...)}
		if conditions != nil {
			props.Conditions = &conditions
		}
		s.Functions[fn].AddToRolePolicy(awsiam.NewPolicyStatement(props))
	}
	region, account, partition := *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), *awscdk.Aws_PARTITION()
	ec2Arn := func(kind string) string {
		return fmt.Sprintf("arn:%s:ec2:%s:%s:%s/*", partition, region, account, kind)
	}
	envTag := map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + compute.TagEnv: p.Env}}

	var arns []string
	for _, sm := range machines {
		arns = append(arns, *sm.StateMachineArn())
	}
	stmt("trigger", "StartScaling", []string{"states:StartExecution"}, append(arns, pressureMachineArn(p.Env)), nil)
	// The controller reads its pools' alarm states; DescribeAlarms has no
	// resource-level permissions.
	stmt("trigger", "ReadAlarmStates", []string{"cloudwatch:DescribeAlarms"}, []string{"*"}, nil)
	// The dispatcher's refusals are demand the controller counts;
	// GetMetricData has no resource-level permissions.
	stmt("trigger", "ReadRefusals", []string{"cloudwatch:GetMetricData"}, []string{"*"}, nil)

	// Launching: the new instance and volume must carry the environment
	// tag; the other resources RunInstances touches are named by type.
	stmt("provision", "LaunchTaggedNodes", []string{"ec2:RunInstances"}, []string{ec2Arn("instance"), ec2Arn("volume")},
		map[string]any{"StringEquals": map[string]any{"aws:RequestTag/" + compute.TagEnv: p.Env}})
	stmt("provision", "LaunchFrom", []string{"ec2:RunInstances"}, []string{
		ec2Arn("subnet"), ec2Arn("security-group"), ec2Arn("network-interface"), ec2Arn("launch-template"),
		fmt.Sprintf("arn:%s:ec2:%s::image/*", partition, region),
	}, nil)
	stmt("provision", "TagOnLaunch", []string{"ec2:CreateTags"}, []string{ec2Arn("instance"), ec2Arn("volume")},
		map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": "RunInstances"}})
	stmt("provision", "StartWarmNodes", []string{"ec2:StartInstances"}, []string{ec2Arn("instance")}, envTag)
	stmt("provision", "ParkWarmNodes", []string{"ec2:StopInstances"}, []string{ec2Arn("instance")}, envTag)
	// DescribeInstances supports no resource-level permissions: AWS
	// requires "*" here.
	stmt("provision", "DescribeNodes", []string{"ec2:DescribeInstances"}, []string{"*"}, nil)
	stmt("provision", "PassNodeRole", []string{"iam:PassRole"}, []string{fmt.Sprintf("arn:%s:iam::%s:role/*", partition, account)},
		map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ec2.amazonaws.com"}})

	stmt("deploy", "RunMediaDocument", []string{"ssm:SendCommand"}, []string{
		fmt.Sprintf("arn:%s:ssm:%s:%s:document/mediascale-%s-*", partition, region, account, p.Env),
	}, nil)
	stmt("deploy", "OnTaggedNodes", []string{"ssm:SendCommand"}, []string{ec2Arn("instance")}, envTag)
	// GetCommandInvocation supports no resource-level permissions.
	stmt("deploy", "ReadCommands", []string{"ssm:GetCommandInvocation"}, []string{"*"}, nil)

	// Spillover: the dispatcher reads each fallback environment's published
	// pool configuration and table name, and queries that table, in the
	// fallback's region. The table's name is CloudFormation's, made at
	// deploy time from the stack's name (mediascale-<env>-NodeTable...).
	var fallbackParams, fallbackTables []string
	seen := map[string]bool{}
	for _, pl := range p.Pools.Pools {
		for _, f := range pl.Admission.Fallbacks {
			if key := f.Region + "/" + f.Environment; !seen[key] {
				seen[key] = true
				for _, name := range []string{coldstart.PoolsParameter(f.Environment), coldstart.TableParameter(f.Environment)} {
					fallbackParams = append(fallbackParams, fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s", partition, f.Region, account, name))
				}
				fallbackTables = append(fallbackTables, fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s-*", partition, f.Region, account, Name(f.Environment)))
			}
		}
	}
	if len(fallbackParams) > 0 {
		stmt("dispatch", "ReadFallbackConfig", []string{"ssm:GetParameter"}, fallbackParams, nil)
		stmt("dispatch", "ReadFallbackNodes", []string{"dynamodb:Query"}, fallbackTables, nil)
	}

	// Traffic moves only in the pools' own hosted zones, target groups and
	// listeners.
	var zones, groups, listeners []string
	for _, pl := range s.published.Pools {
		if r := pl.Traffic.Route53; r != nil {
			zones = append(zones, fmt.Sprintf("arn:%s:route53:::hostedzone/%s", partition, r.HostedZoneID))
		}
		if lb := pl.Traffic.LoadBalancer; lb != nil {
			groups = append(groups, lb.TargetGroupArn, lb.CanaryTargetGroupArn)
			listeners = append(listeners, lb.ListenerArn)
		}
	}
	for _, fn := range []string{"shift", "rollback", "drain", "reconcile", "heal"} {
		if len(zones) > 0 {
			stmt(fn, "NodeRecords", []string{"route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"}, zones, nil)
		}
		if len(groups) == 0 {
			continue
		}
		stmt(fn, "NodeTargets", []string{"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"}, groups, nil)
		stmt(fn, "SplitListener", []string{"elasticloadbalancing:ModifyListener"}, listeners, nil)
		// DescribeTargetHealth supports no resource-level permissions.
		stmt(fn, "ReadTargets", []string{"elasticloadbalancing:DescribeTargetHealth"}, []string{"*"}, nil)
	}
	// GetMetricData and DescribeAlarms support no resource-level
	// permissions for these calls.
	stmt("shift", "ReadGuard", []string{"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"}, []string{"*"}, nil)

	stmt("rollback", "TerminateTaggedNodes", []string{"ec2:TerminateInstances"}, []string{ec2Arn("instance")}, envTag)
	stmt("drain", "TerminateTaggedNodes", []string{"ec2:TerminateInstances"}, []string{ec2Arn("instance")}, envTag)
	stmt("heal", "TerminateTaggedNodes", []string{"ec2:TerminateInstances"}, []string{ec2Arn("instance")}, envTag)
	stmt("drain", "RunMediaDocument", []string{"ssm:SendCommand"}, []string{
		fmt.Sprintf("arn:%s:ssm:%s:%s:document/mediascale-%s-*", partition, region, account, p.Env),
	}, nil)
	stmt("drain", "OnTaggedNodes", []string{"ssm:SendCommand"}, []string{ec2Arn("instance")}, envTag)
	stmt("reconcile", "ReadExecutions", []string{"states:DescribeExecution"}, []string{
		fmt.Sprintf("arn:%s:states:%s:%s:execution:mediascale-%s-*", partition, region, account, p.Env),
	}, nil)
	stmt("reconcile", "TerminateTaggedNodes", []string{"ec2:TerminateInstances"}, []string{ec2Arn("instance")}, envTag)
	stmt("reconcile", "DescribeNodes", []string{"ec2:DescribeInstances"}, []string{"*"}, nil)
	// PutMetricData has no resource-level permissions; the namespace
	// condition keeps it to mediascale's own metrics.
	stmt("reconcile", "PublishFindings", []string{"cloudwatch:PutMetricData"}, []string{"*"},
		map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": traffic.Namespace}})
	// The plan reads session counts to choose scale-in victims; like the
	// guard's reads, GetMetricData has no resource-level permissions.
	stmt("plan", "ReadSessions", []string{"cloudwatch:GetMetricData"}, []string{"*"}, nil)
	// The plan retires stale warm-pool nodes.
	stmt("plan", "RetireWarmNodes", []string{"ec2:TerminateInstances"}, []string{ec2Arn("instance")}, envTag)
	stmt("rollback", "DescribeNodes", []string{"ec2:DescribeInstances"}, []string{"*"}, nil)
	// The forecaster reads each pool's history of LoadCapacity and
	// ScaleSeconds.
	stmt("forecast", "ReadHistory", []string{"cloudwatch:GetMetricData"}, []string{"*"}, nil)
}
