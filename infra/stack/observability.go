package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

// ExecutionsFailedAlarmName is the alarm that pages when a scaling
// execution fails or times out.
func ExecutionsFailedAlarmName(env string) string { return "mediascale-" + env + "-executions-failed" }

// NodesUnfinishedAlarmName is the alarm that pages when an execution ends
// with a node in the middle of a rollback or drain.
func NodesUnfinishedAlarmName(env string) string { return "mediascale-" + env + "-nodes-unfinished" }

// DashboardName is the environment's CloudWatch dashboard.
func DashboardName(env string) string { return "mediascale-" + env }

// window is the period every dashboard graph and the alarm aggregate over.
var window = awscdk.Duration_Minutes(jsii.Number(5))

// newObservability creates the alert topic, the alarm on failed
// executions and the environment's dashboard.
func (s *Stack) newObservability(p Props) {
	// CloudWatch alarms can publish to an encrypted topic only when the key
	// lets CloudWatch use it, which the AWS managed SNS key does not: the
	// topic gets a key of its own.
	key := awskms.NewKey(s.Stack, jsii.String("AlertKey"), &awskms.KeyProps{
		Description:       jsii.String("mediascale " + p.Env + " alert topic"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		// In a key policy "*" is the key itself.
		Resources: jsii.Strings("*"),
	}), nil)
	topic := awssns.NewTopic(s.Stack, jsii.String("AlertTopic"), &awssns.TopicProps{
		TopicName:   jsii.String("mediascale-" + p.Env + "-alerts"),
		DisplayName: jsii.String("mediascale " + p.Env + " alerts"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})

	failed := func(m awsstepfunctions.StateMachine) (awscloudwatch.Metric, awscloudwatch.Metric) {
		opts := &awscloudwatch.MetricOptions{Period: window, Statistic: jsii.String("Sum")}
		return m.MetricFailed(opts), m.MetricTimedOut(opts)
	}
	outFailed, outTimedOut := failed(s.ScaleOut)
	inFailed, inTimedOut := failed(s.ScaleIn)
	alarm := awscloudwatch.NewAlarm(s.Stack, jsii.String("ExecutionsFailedAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(ExecutionsFailedAlarmName(p.Env)),
		AlarmDescription: jsii.String("A mediascale " + p.Env + " scaling execution failed or timed out: read the release step's summary " +
			"in the execution's history, then README.md, Troubleshooting"),
		Metric: awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("FILL(outFailed, 0) + FILL(outTimedOut, 0) + FILL(inFailed, 0) + FILL(inTimedOut, 0)"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"outFailed": outFailed, "outTimedOut": outTimedOut, "inFailed": inFailed, "inTimedOut": inTimedOut,
			},
			Label:  jsii.String("failed or timed-out executions"),
			Period: window,
		}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
	unfinished := awscloudwatch.NewAlarm(s.Stack, jsii.String("NodesUnfinishedAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(NodesUnfinishedAlarmName(p.Env)),
		AlarmDescription: jsii.String("A mediascale " + p.Env + " execution ended with a node in the middle of a rollback or drain; " +
			"the release summary names it and the reconciler finishes it: README.md, Troubleshooting"),
		Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(telemetry.Namespace), MetricName: jsii.String("NodesUnfinished"),
			Statistic: jsii.String("Sum"), Period: window,
		}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	unfinished.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
	// The dashboard names the alarm by its ARN rather than by a reference:
	// moto's CloudFormation skips alarms, and a reference to a skipped
	// resource would fail the local deploy.
	arn := s.Stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"), ResourceName: jsii.String(ExecutionsFailedAlarmName(p.Env)),
		ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	s.newDashboard(p, awscloudwatch.Alarm_FromAlarmArn(s.Stack, jsii.String("ExecutionsFailedAlarmByArn"), arn))
	awscdk.NewCfnOutput(s.Stack, jsii.String("AlertTopicArn"), &awscdk.CfnOutputProps{Value: topic.TopicArn()})
	awscdk.NewCfnOutput(s.Stack, jsii.String("DashboardName"), &awscdk.CfnOutputProps{Value: jsii.String(DashboardName(p.Env))})
}

// search graphs every metric of one name in the mediascale namespace with
// exactly the given dimensions, so pools added later show up without a
// redeploy.
func search(metric, stat, label string, dims ...string) awscloudwatch.IMetric {
	schema := telemetry.Namespace
	for _, d := range dims {
		schema += "," + d
	}
	props := &awscloudwatch.SearchExpressionProps{
		Expression: jsii.String(fmt.Sprintf("SEARCH('{%s} MetricName=\"%s\"', '%s', 300)", schema, metric, stat)),
		Period:     window,
	}
	if label != "" {
		props.Label = jsii.String(label)
	}
	return awscloudwatch.NewSearchExpression(props)
}

// graph is one dashboard graph.
func graph(title string, left ...awscloudwatch.IMetric) awscloudwatch.GraphWidget {
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6),
	})
}

// newDashboard lays out what an operator looks at during a live event: the
// scaling alarms and outcomes first, then how long scaling takes and which
// step costs it, then the nodes' own load per pool.
func (s *Stack) newDashboard(p Props, failed awscloudwatch.IAlarm) {
	byOutcome := []string{"Direction", "Pool", "Status"}
	executions := func(title string, m awsstepfunctions.StateMachine) awscloudwatch.GraphWidget {
		opts := &awscloudwatch.MetricOptions{Period: window, Statistic: jsii.String("Sum")}
		return graph(title, m.MetricStarted(opts), m.MetricSucceeded(opts), m.MetricFailed(opts), m.MetricTimedOut(opts))
	}
	rows := [][]awscloudwatch.IWidget{
		{
			awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
				Title: jsii.String("Failed executions"), Alarms: &[]interfacesawscloudwatch.IAlarmRef{failed}, Width: jsii.Number(8), Height: jsii.Number(6),
			}),
			executions("Scale-out executions", s.ScaleOut),
			executions("Scale-in executions", s.ScaleIn),
		},
		{
			graph("Scale events by outcome", search("ScaleEvents", "Sum", "", byOutcome...)),
			graph("Nodes added and removed", search("NodesAdded", "Sum", "added", byOutcome...), search("NodesRemoved", "Sum", "removed", byOutcome...)),
			graph("Rollbacks, cancelled drains, forced sessions", search("Rollbacks", "Sum", "rollbacks", byOutcome...),
				search("DrainsCancelled", "Sum", "drains cancelled", byOutcome...), search("ForcedSessions", "Sum", "forced sessions", byOutcome...)),
		},
		{
			graph("Alarm to end of scaling (s, max)", search("ScaleSeconds", "Maximum", "", byOutcome...)),
			graph("Step duration (ms, p90)", search("StepDuration", "p90", "", "Step")),
			graph("Step errors and reconciler findings", search("StepErrors", "Sum", "step errors", "Step"),
				search("ReconcilerFindings", "Sum", "findings", "Kind", "Pool")),
		},
	}
	for _, pl := range p.Pools.Pools {
		rows = append(rows, []awscloudwatch.IWidget{poolLoad(pl), poolCapacity(pl)})
	}
	dash := awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(DashboardName(p.Env)),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	for _, row := range rows {
		dash.AddWidgets(row...)
	}
}

// poolMetric is one of a pool's mediascale metrics, a minute at a time.
func poolMetric(pl pool.Pool, name, stat, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(telemetry.Namespace), MetricName: jsii.String(name), DimensionsMap: &map[string]*string{"Pool": jsii.String(pl.Name)},
		Statistic: jsii.String(stat), Period: awscdk.Duration_Minutes(jsii.Number(1)), Label: jsii.String(label),
	})
}

// poolCapacity graphs a pool's capacity as the controller sees it every
// minute: the nodes it has, the nodes it wants, the nodes the load alone
// calls for, and the forecast's floor (README.md, "Predictive
// pre-scaling").
func poolCapacity(pl pool.Pool) awscloudwatch.GraphWidget {
	metric := func(name, label string) awscloudwatch.IMetric { return poolMetric(pl, name, "Maximum", label) }
	return graph(pl.Name+": capacity (nodes)", metric("CurrentCapacity", "current"), metric("DesiredCapacity", "desired"),
		metric("LoadCapacity", "load calls for"), metric("ForecastFloor", "forecast floor"))
}

// poolLoad graphs a pool's average load against its scale-out thresholds,
// the numbers its alarms compare.
func poolLoad(pl pool.Pool) awscloudwatch.GraphWidget {
	metric := func(name, label string) awscloudwatch.IMetric { return poolMetric(pl, name, "Average", label) }
	t := pl.Alarms.ScaleOut
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(pl.Name + ": load per node"),
		Left:  &[]awscloudwatch.IMetric{metric("CPUPercent", "CPU %"), metric("BandwidthMbps", "Mbit/s")},
		Right: &[]awscloudwatch.IMetric{metric("Connections", "connections")},
		LeftAnnotations: &[]*awscloudwatch.HorizontalAnnotation{
			{Value: jsii.Number(t.CPUPercent), Label: jsii.String("scale-out CPU %")},
			{Value: jsii.Number(t.BandwidthMbpsPerNode), Label: jsii.String("scale-out Mbit/s")},
		},
		RightAnnotations: &[]*awscloudwatch.HorizontalAnnotation{
			{Value: jsii.Number(t.ConnectionsPerNode), Label: jsii.String("scale-out connections")},
		},
		Width: jsii.Number(8), Height: jsii.Number(6),
	})
}
