package stack

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// Props are everything one environment's stack is built from.
type Props struct {
	Env      string
	Settings Settings
	Pools    pool.File
	// AssetRoot holds one folder per function with its prebuilt bootstrap
	// (build/ in the repository).
	AssetRoot string
	// RepoRoot is the repository, where the media install script lives.
	RepoRoot string
}

// Stack is the built stack with the resources tests and callers look at.
type Stack struct {
	awscdk.Stack
	Table          awsdynamodb.Table
	PoolsParameter awsssm.StringParameter
	TableParameter awsssm.StringParameter
	Functions      map[string]awslambda.Function
	ScaleOut       awsstepfunctions.StateMachine
	ScaleIn        awsstepfunctions.StateMachine
	Pressure       awsstepfunctions.StateMachine
	network        *network
	// nodeRole is the instance role of managed launch templates; nil when
	// every pool brings its own.
	nodeRole awsiam.Role
	// published is the pool configuration with every "managed" id
	// resolved, which the grants scope permissions to.
	published pool.File
}

// Name is the stack name of an environment.
func Name(env string) string { return "mediascale-" + env }

// standardParameterLimit is the largest value a Standard-tier SSM parameter
// holds; a larger configuration needs the Advanced tier (8 KB).
const standardParameterLimit = 4096

// New builds the stack of one environment.
func New(scope constructs.Construct, p Props) (*Stack, error) {
	st := awscdk.NewStack(scope, jsii.String(Name(p.Env)), &awscdk.StackProps{
		Description: jsii.String(fmt.Sprintf("mediascale %s: autoscaling for real-time media node pools", p.Env)),
	})
	// SSM parameters and the alert key are left untagged: their names
	// already say the environment, and moto's CloudFormation fails on
	// their tags (the map form of AWS::SSM::Parameter tags; it reads KMS
	// key tags as TagKey/TagValue where CloudFormation says Key/Value),
	// which would break the local cloud.
	awscdk.Tags_Of(st).Add(jsii.String("mediascale:env"), jsii.String(p.Env), &awscdk.TagProps{
		ExcludeResourceTypes: jsii.Strings("AWS::SSM::Parameter", "AWS::KMS::Key"),
	})
	s := &Stack{Stack: st, Functions: map[string]awslambda.Function{}}

	removal := removalOf(p.Settings)
	s.Table = awsdynamodb.NewTable(st, jsii.String("NodeTable"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String(fleet.PartitionKey), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String(fleet.SortKey), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(fleet.TTLAttribute),
		Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(p.Settings.PointInTimeRecovery),
		},
		DeletionProtection: jsii.Bool(p.Settings.DeletionProtection),
		RemovalPolicy:      removal,
	})
	if !p.Settings.PointInTimeRecovery {
		nagAccept(s.Table, "AwsSolutions-DDB3", nagDevTable)
	}

	var err error
	if s.network, err = s.newNetwork(p); err != nil {
		return nil, err
	}
	s.newBalancers(p)
	zones := s.newHostedZones(p)
	published := p.Pools
	published.Pools = make([]pool.Pool, len(p.Pools.Pools))
	for i, pl := range p.Pools.Pools {
		published.Pools[i] = s.network.resolve(pl)
		if r := pl.Traffic.Route53; r != nil && r.HostedZoneID == pool.Managed {
			_, domain, _ := strings.Cut(r.RecordName, ".")
			resolved := *r
			resolved.HostedZoneID = *zones[domain].Ref()
			published.Pools[i].Traffic.Route53 = &resolved
		}
	}
	s.published = published
	poolsJSON, err := published.JSON()
	if err != nil {
		return nil, fmt.Errorf("encoding pool config: %w", err)
	}
	tier := awsssm.ParameterTier_STANDARD
	if len(poolsJSON) > standardParameterLimit {
		tier = awsssm.ParameterTier_ADVANCED
	}
	s.PoolsParameter = awsssm.NewStringParameter(st, jsii.String("PoolsParameter"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(coldstart.PoolsParameter(p.Env)),
		Description:   jsii.String("mediascale pool configuration, validated at synth from " + p.Settings.Config),
		StringValue:   jsii.String(string(poolsJSON)),
		Tier:          tier,
	})
	// Dispatchers of other regions whose pools fall back on this
	// environment's read its table by this name.
	s.TableParameter = awsssm.NewStringParameter(st, jsii.String("TableParameter"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(coldstart.TableParameter(p.Env)),
		Description:   jsii.String("mediascale node table of this environment, for dispatchers that spill sessions into its pools"),
		StringValue:   s.Table.TableName(),
	})

	for _, spec := range functionSpecs {
		s.Functions[spec.Name] = s.function(p, spec, removal)
	}
	if err := s.newMediaDocument(p); err != nil {
		return nil, err
	}
	if err := s.newDrainDocument(p); err != nil {
		return nil, err
	}
	if s.ScaleOut, err = s.newWorkflow(p, removal, "scale-out", ScaleOutFunctions, ScaleOutDefinition); err != nil {
		return nil, err
	}
	if s.ScaleIn, err = s.newWorkflow(p, removal, "scale-in", ScaleInFunctions, ScaleInDefinition); err != nil {
		return nil, err
	}
	if s.Pressure, err = s.newWorkflow(p, removal, "pressure", PressureFunctions, PressureDefinition); err != nil {
		return nil, err
	}
	for _, fn := range []string{"trigger", "reconcile"} {
		s.Functions[fn].AddEnvironment(jsii.String("MEDIASCALE_SCALE_OUT_MACHINE"), s.ScaleOut.StateMachineArn(), nil)
		s.Functions[fn].AddEnvironment(jsii.String("MEDIASCALE_SCALE_IN_MACHINE"), s.ScaleIn.StateMachineArn(), nil)
	}
	s.Functions["trigger"].AddEnvironment(jsii.String("MEDIASCALE_PRESSURE_MACHINE"), jsii.String(pressureMachineArn(p.Env)), nil)
	s.Functions["trigger"].AddEnvironment(jsii.String(coldstart.EnvAccount), awscdk.Aws_ACCOUNT_ID(), nil)
	s.newSchedules(p)
	s.newDispatchURL(p)
	s.newAlarms(p)
	s.newObservability(p)
	s.checkWithNag()
	s.grant(p, s.ScaleOut, s.ScaleIn)
	awscdk.NewCfnOutput(st, jsii.String("ScaleOutMachine"), &awscdk.CfnOutputProps{Value: s.ScaleOut.StateMachineArn()})
	awscdk.NewCfnOutput(st, jsii.String("ScaleInMachine"), &awscdk.CfnOutputProps{Value: s.ScaleIn.StateMachineArn()})
	awscdk.NewCfnOutput(st, jsii.String("NodeTableName"), &awscdk.CfnOutputProps{Value: s.Table.TableName()})
	awscdk.NewCfnOutput(st, jsii.String("PoolsParameterName"), &awscdk.CfnOutputProps{Value: s.PoolsParameter.ParameterName()})
	return s, nil
}

// removalOf is what deleting the stack does to the environment's data:
// kept when the settings say retainData, gone otherwise.
func removalOf(s Settings) awscdk.RemovalPolicy {
	if s.RetainData {
		return awscdk.RemovalPolicy_RETAIN
	}
	return awscdk.RemovalPolicy_DESTROY
}

// DispatchClientsPolicyName is the managed policy a caller of the entry
// dispatcher needs (README.md, "Entry dispatch").
func DispatchClientsPolicyName(env string) string { return "mediascale-" + env + "-dispatch-clients" }

// newDispatchURL puts the entry dispatcher behind a function URL that
// takes only SigV4-signed requests, and defines the one managed policy
// that lets a caller (the application's session service) sign them. No
// CloudFormation output names the URL: the local cloud's CloudFormation
// does not create AWS::Lambda::Url, so an output reading it would break
// the local deploy; `msctl dispatch` reads it with GetFunctionUrlConfig.
func (s *Stack) newDispatchURL(p Props) {
	fn := s.Functions["dispatch"]
	fn.AddFunctionUrl(&awslambda.FunctionUrlOptions{AuthType: awslambda.FunctionUrlAuthType_AWS_IAM})
	awsiam.NewManagedPolicy(s.Stack, jsii.String("DispatchClientsPolicy"), &awsiam.ManagedPolicyProps{
		ManagedPolicyName: jsii.String(DispatchClientsPolicyName(p.Env)),
		Description:       jsii.String(fmt.Sprintf("Lets a caller ask mediascale %s's entry dispatcher where a new session goes", p.Env)),
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("InvokeDispatcher"),
			Actions:    jsii.Strings("lambda:InvokeFunctionUrl"),
			Resources:  jsii.Strings(*fn.FunctionArn()),
			Conditions: &map[string]any{"StringEquals": map[string]any{"lambda:FunctionUrlAuthType": "AWS_IAM"}},
		})},
	})
}

// function builds one Lambda with its own role, log group and the
// permissions its spec lists.
func (s *Stack) function(p Props, spec functionSpec, removal awscdk.RemovalPolicy) awslambda.Function {
	id := spec.LogicalID()
	logs := awslogs.NewLogGroup(s.Stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String(fmt.Sprintf("/aws/lambda/mediascale-%s-%s", p.Env, spec.Name)),
		Retention:     logRetentions[p.Settings.LogRetentionDays],
		RemovalPolicy: removal,
	})
	role := awsiam.NewRole(s.Stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("mediascale %s %s function", p.Env, spec.Name)),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("WriteOwnLogs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn(), *logs.LogGroupArn()+":*"),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadPoolConfig"),
		Actions:   jsii.Strings("ssm:GetParameter"),
		Resources: jsii.Strings(*s.PoolsParameter.ParameterArn()),
	}))
	if len(spec.TableActions) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("NodeTable"),
			Actions:   jsii.Strings(spec.TableActions...),
			Resources: jsii.Strings(*s.Table.TableArn()),
		}))
	}
	fn := awslambda.NewFunction(s.Stack, jsii.String(id), &awslambda.FunctionProps{
		FunctionName:  jsii.String(fmt.Sprintf("mediascale-%s-%s", p.Env, spec.Name)),
		Description:   jsii.String(spec.Description),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  awslambda.Architecture_ARM_64(),
		Handler:       jsii.String("bootstrap"),
		Code:          awslambda.Code_FromAsset(jsii.String(filepath.Join(p.AssetRoot, spec.Name)), nil),
		MemorySize:    jsii.Number(spec.MemoryMB),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(spec.TimeoutSeconds)),
		Tracing:       awslambda.Tracing_ACTIVE,
		LoggingFormat: awslambda.LoggingFormat_JSON,
		LogGroup:      logs,
		Role:          role,
		Environment: &map[string]*string{
			coldstart.EnvTable:          s.Table.TableName(),
			coldstart.EnvPoolsParameter: s.PoolsParameter.ParameterName(),
			coldstart.EnvEnvironment:    jsii.String(p.Env),
			"MEDIASCALE_FUNCTION":       jsii.String(spec.Name),
		},
	})
	awscdk.Tags_Of(fn).Add(jsii.String("mediascale:function"), jsii.String(spec.Name), nil)
	if spec.InVpc {
		s.placeInVpc(fn, role)
	}
	return fn
}

// placeInVpc runs a function in the function subnets with the security
// group the nodes admit, and lets Lambda manage its network interfaces.
func (s *Stack) placeInVpc(fn awslambda.Function, role awsiam.Role) {
	fn.Node().DefaultChild().(awslambda.CfnFunction).SetVpcConfig(&awslambda.CfnFunction_VpcConfigProperty{
		SubnetIds:        &s.network.functionSubnets,
		SecurityGroupIds: &[]*string{s.network.functionGroup.AttrGroupId()},
	})
	// Lambda creates and deletes the function's network interfaces with
	// the function's role. DescribeNetworkInterfaces and DescribeSubnets
	// work only on "*"; the others are held to this account and region.
	policy := awsiam.NewPolicy(s.Stack, jsii.String(*fn.Node().Id()+"VpcAccess"), &awsiam.PolicyProps{
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("DescribeNetwork"),
				Actions:   jsii.Strings("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
				Resources: jsii.Strings("*"),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("ManageOwnInterfaces"),
				Actions: jsii.Strings("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
					"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
				Resources: jsii.Strings(fmt.Sprintf("arn:%s:ec2:%s:%s:*/*", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())),
			}),
		},
		Roles: &[]awsiam.IRole{role},
	})
	// Lambda checks these permissions when it creates the function.
	fn.Node().AddDependency(policy)
}
