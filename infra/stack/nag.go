package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// checkWithNag runs cdk-nag's AwsSolutions pack over the stack on every
// synth: a finding is an error annotation, which fails `cdk synth` and
// `cdk deploy`, and the stack tests assert there are none. Each accepted
// finding is suppressed here, narrowed with appliesTo to the exact
// resource pattern, and carries its reason; TestNagFindsNothingUnexplained
// and TestEveryStarResourceIsOneAwsRequires keep the list honest.
func (s *Stack) checkWithNag() {
	awscdk.Aspects_Of(s.Stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	regex := func(r string) *cdknag.RegexAppliesTo { return &cdknag.RegexAppliesTo{Regex: jsii.String(r)} }
	suppress := func(id, reason string, appliesTo ...any) *cdknag.NagPackSuppression {
		sup := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
		if len(appliesTo) > 0 {
			sup.AppliesTo = &appliesTo
		}
		return sup
	}
	cdknag.NagSuppressions_AddStackSuppressions(s.Stack, &[]*cdknag.NagPackSuppression{
		suppress("AwsSolutions-IAM5",
			"Only actions without resource-level permissions get \"*\": X-Ray segments and sampling, CloudWatch GetMetricData/DescribeAlarms "+
				"and PutMetricData (held to the Mediascale namespace by condition), ec2:DescribeInstances/DescribeNetworkInterfaces/DescribeSubnets, "+
				"ssm:GetCommandInvocation, elasticloadbalancing:DescribeTargetHealth, and Step Functions' log delivery; "+
				"TestEveryStarResourceIsOneAwsRequires pins that list.",
			"Resource::*"),
		suppress("AwsSolutions-IAM5",
			"A function writes log streams only in its own log group; stream names are made by Lambda at run time.",
			regex(`/^Resource::<[A-Za-z]+FunctionLogs[0-9A-F]+\.Arn>:\*$/`)),
		suppress("AwsSolutions-IAM5",
			"The state machines invoke their own functions, whose versions CDK's invoke grant names with :*.",
			regex(`/^Resource::<[A-Za-z]+Function[0-9A-F]+\.Arn>:\*$/`)),
		suppress("AwsSolutions-IAM5",
			"Node instances are created at run time, so their ids cannot be listed: every action on them is held to instances "+
				"tagged mediascale:env for this environment (aws:ResourceTag, or aws:RequestTag when launching).",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:volume/*"),
		suppress("AwsSolutions-IAM5",
			"RunInstances authorises every resource a launch touches; subnets, security groups and launch templates come from the "+
				"pool configuration, which can change without a deploy, and images are public AMIs resolved at deploy time.",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:subnet/*",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:security-group/*",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:launch-template/*",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*"),
		suppress("AwsSolutions-IAM5",
			"Lambda creates and deletes the network interfaces of VPC functions with the function's role; their ids do not exist "+
				"before Lambda makes them, so the actions are held to this account and region.",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*"),
		suppress("AwsSolutions-IAM5",
			"Only this environment's own SSM documents (mediascale-<env>-*), created by this stack, may be run.",
			regex(`/^Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:document\/mediascale-[a-z0-9-]+-\*$/`)),
		suppress("AwsSolutions-IAM5",
			"The reconciler reads executions of this environment's own state machines, named at run time.",
			regex(`/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:mediascale-[a-z0-9-]+-\*$/`)),
		suppress("AwsSolutions-IAM5",
			"The dispatcher spills sessions into fallback pools of other environments; each one's node table is named by "+
				"CloudFormation when that stack is deployed, so the query is held to tables of that environment's stack (mediascale-<env>-*) in its region.",
			regex(`/^Resource::arn:<AWS::Partition>:dynamodb:[a-z0-9-]+:<AWS::AccountId>:table\/mediascale-[a-z0-9]+-\*$/`)),
		suppress("AwsSolutions-IAM5",
			"Launch templates name their instance profile, which may be any role of the account; iam:PassRole is held to "+
				"roles passed to EC2 by condition.",
			"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*"),
		suppress("AwsSolutions-IAM4",
			"Media nodes take commands only through SSM Run Command, for which AmazonSSMManagedInstanceCore is the documented "+
				"and maintained minimum.",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"),
		suppress("AwsSolutions-IAM4",
			"The media image's build instance runs EC2 Image Builder's components; EC2InstanceProfileForImageBuilder is the "+
				"documented and maintained minimum for it (component and log access), and the instance lives only for a build.",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/EC2InstanceProfileForImageBuilder"),
	}, nil)
}

// Findings accepted for one resource only, with their reasons.
const (
	nagPublicMediaPort = "Media nodes serve the public: RTMP ingest and playback arrive from anywhere on the media port, the only " +
		"port open to 0.0.0.0/0; health and stats ports admit only the probe and drain functions."
	nagBalancerLogs = "Access logs of a media load balancer would record every viewer connection; session metrics come from the " +
		"nodes. Environments that need them use balancers of their own (loadBalancer ARNs in the pool file) with logs on."
	nagDevTable = "Point-in-time recovery is a per-environment setting (pointInTimeRecovery in cdk.json), on in staging and prod; " +
		"a dev table's nodes are found again by the reconciler from the running instances."
)

// nagAccept suppresses one finding on one resource.
func nagAccept(resource any, id, reason string) {
	cdknag.NagSuppressions_AddResourceSuppressions(resource, &[]*cdknag.NagPackSuppression{
		{Id: jsii.String(id), Reason: jsii.String(reason)},
	}, jsii.Bool(true))
}
