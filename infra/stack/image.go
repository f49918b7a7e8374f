package stack

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsimagebuilder"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/shared/pool"
)

// ImageParameterName is where the media image pipeline writes the id of
// the last image it built.
func ImageParameterName(env string) string { return "/mediascale/" + env + "/media-image" }

// imageBuilderInstanceType builds the image: Graviton, as the pools' nodes
// and the arm64 parent image are.
const imageBuilderInstanceType = "c7g.large"

// newMediaImage defines the golden media image: an EC2 Image Builder
// pipeline that bakes nginx with its RTMP module (the install script in
// bake mode, so the build is the deploy's own) and the node agent into an
// Amazon Linux 2023 arm64 image. It writes each image's id to
// ImageParameterName and adds a launch template version with it to every
// pool's own launch template; a pool file pins that numbered version, as
// it pins every other. A node launched from the image downloads and
// compiles nothing: the deploy writes the configuration and reloads nginx.
func (s *Stack) newMediaImage(p Props, script []byte, agent awss3assets.Asset) {
	env := p.Env
	role := awsiam.NewRole(s.Stack, jsii.String("MediaImageRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("mediascale %s: the instance that builds the media image", env)),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("AmazonSSMManagedInstanceCore")),
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("EC2InstanceProfileForImageBuilder")),
		},
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("FetchAgent"), Actions: jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(*agent.Bucket().ArnForObjects(agent.S3ObjectKey())),
	}))
	profile := awsiam.NewCfnInstanceProfile(s.Stack, jsii.String("MediaImageProfile"), &awsiam.CfnInstanceProfileProps{
		Roles: &[]any{role.RoleName()},
	})
	// The build reaches nginx.org, Debian's archive and the package mirrors through
	// the functions' private subnets and their NAT; nothing reaches it.
	group := awsec2.NewCfnSecurityGroup(s.Stack, jsii.String("MediaImageGroup"), &awsec2.CfnSecurityGroupProps{
		GroupDescription: jsii.String(fmt.Sprintf("mediascale %s: the media image build instance, outbound only", env)),
		VpcId:            s.network.vpcID,
		SecurityGroupEgress: &[]any{&awsec2.CfnSecurityGroup_EgressProperty{
			IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443), CidrIp: jsii.String("0.0.0.0/0"),
			Description: jsii.String("package mirrors, nginx.org, deb.debian.org, S3 and Systems Manager over HTTPS"),
		}},
	})

	version := imageVersion(script, *agent.AssetHash())
	name := "mediascale-" + env + "-media"
	component := awsimagebuilder.NewCfnComponent(s.Stack, jsii.String("MediaComponent"), &awsimagebuilder.CfnComponentProps{
		Name: jsii.String(name), Platform: jsii.String("Linux"), Version: jsii.String(version),
		Description: jsii.String("nginx with the RTMP module, built by the deploy's own script, and the mediascale node agent"),
		Data:        jsii.String(componentDocument(script, *agent.S3ObjectUrl())),
	})
	recipe := awsimagebuilder.NewCfnImageRecipe(s.Stack, jsii.String("MediaRecipe"), &awsimagebuilder.CfnImageRecipeProps{
		Name: jsii.String(name), Version: jsii.String(version),
		// The latest Amazon Linux 2023 arm64 image when the pipeline runs.
		ParentImage: jsii.String("ssm:" + amiParameter),
		Components:  &[]any{&awsimagebuilder.CfnImageRecipe_ComponentConfigurationProperty{ComponentArn: component.AttrArn()}},
		BlockDeviceMappings: &[]any{&awsimagebuilder.CfnImageRecipe_InstanceBlockDeviceMappingProperty{
			DeviceName: jsii.String("/dev/xvda"),
			Ebs: &awsimagebuilder.CfnImageRecipe_EbsInstanceBlockDeviceSpecificationProperty{
				Encrypted: jsii.Bool(true), VolumeType: jsii.String("gp3"), VolumeSize: jsii.Number(8), DeleteOnTermination: jsii.Bool(true),
			},
		}},
	})
	infra := awsimagebuilder.NewCfnInfrastructureConfiguration(s.Stack, jsii.String("MediaImageInfrastructure"), &awsimagebuilder.CfnInfrastructureConfigurationProps{
		Name: jsii.String(name), InstanceProfileName: profile.Ref(), InstanceTypes: jsii.Strings(imageBuilderInstanceType),
		SubnetId: s.network.functionSubnets[0], SecurityGroupIds: &[]*string{group.AttrGroupId()},
		TerminateInstanceOnFailure: jsii.Bool(true),
		InstanceMetadataOptions: &awsimagebuilder.CfnInfrastructureConfiguration_InstanceMetadataOptionsProperty{
			HttpTokens: jsii.String("required"),
		},
	})
	distribution := &awsimagebuilder.CfnDistributionConfiguration_DistributionProperty{
		Region: awscdk.Aws_REGION(),
		AmiDistributionConfiguration: map[string]any{
			"Name":        name + "-{{ imagebuilder:buildDate }}",
			"Description": "mediascale " + env + " media node: nginx-rtmp and the node agent",
		},
		SsmParameterConfigurations: &[]any{&awsimagebuilder.CfnDistributionConfiguration_SsmParameterConfigurationProperty{
			ParameterName: jsii.String(ImageParameterName(env)), DataType: jsii.String("aws:ec2:image"),
		}},
	}
	if templates := ownLaunchTemplates(p.Pools); len(templates) > 0 {
		var configs []any
		for _, id := range templates {
			// A new version, never the default: the pool file moves to it
			// when an operator pins it.
			configs = append(configs, &awsimagebuilder.CfnDistributionConfiguration_LaunchTemplateConfigurationProperty{
				LaunchTemplateId: jsii.String(id), SetDefaultVersion: jsii.Bool(false),
			})
		}
		distribution.LaunchTemplateConfigurations = &configs
	}
	dist := awsimagebuilder.NewCfnDistributionConfiguration(s.Stack, jsii.String("MediaImageDistribution"), &awsimagebuilder.CfnDistributionConfigurationProps{
		Name: jsii.String(name), Distributions: &[]any{distribution},
	})
	awsimagebuilder.NewCfnImagePipeline(s.Stack, jsii.String("MediaImagePipeline"), &awsimagebuilder.CfnImagePipelineProps{
		Name:                           jsii.String(name),
		Description:                    jsii.String("Bakes the media server and the node agent, weekly when the parent image or a component changed, and on demand"),
		ImageRecipeArn:                 recipe.AttrArn(),
		InfrastructureConfigurationArn: infra.AttrArn(),
		DistributionConfigurationArn:   dist.AttrArn(),
		ImageTestsConfiguration:        &awsimagebuilder.CfnImagePipeline_ImageTestsConfigurationProperty{ImageTestsEnabled: jsii.Bool(true)},
		Schedule: &awsimagebuilder.CfnImagePipeline_ScheduleProperty{
			ScheduleExpression:              jsii.String("cron(0 3 ? * SUN *)"),
			PipelineExecutionStartCondition: jsii.String("EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"),
		},
		Status: jsii.String("ENABLED"),
	})
}

// imageVersion is the component's and recipe's semantic version, from
// what they bake: Image Builder versions are immutable, so a changed
// script or agent is a new version and an unchanged one is the same.
func imageVersion(script []byte, agentHash string) string {
	sum := sha256.Sum256(append(append([]byte{}, script...), agentHash...))
	return fmt.Sprintf("1.0.%d", binary.BigEndian.Uint32(sum[:4])%1000000)
}

// componentDocument is the Image Builder component: the install script in
// bake mode, the agent binary from the stack's asset, and a check that
// the module and nginx are there.
func componentDocument(script []byte, agentURL string) string {
	var b strings.Builder
	b.WriteString("name: mediascale-media\n")
	b.WriteString("description: nginx with the RTMP module and the mediascale node agent\n")
	b.WriteString("schemaVersion: 1.0\n")
	b.WriteString("phases:\n  - name: build\n    steps:\n")
	b.WriteString("      - name: MediaServer\n        action: ExecuteBash\n        inputs:\n          commands:\n            - |\n")
	b.WriteString("              export MEDIASCALE_BAKE=1\n")
	for _, line := range strings.Split(strings.TrimRight(string(script), "\n"), "\n") {
		b.WriteString("              " + line + "\n")
	}
	b.WriteString("      - name: Agent\n        action: S3Download\n        inputs:\n")
	b.WriteString("          - source: " + agentURL + "\n            destination: /usr/local/bin/mediascale-agent\n")
	b.WriteString("      - name: AgentExecutable\n        action: ExecuteBash\n        inputs:\n          commands:\n")
	b.WriteString("            - chmod 0755 /usr/local/bin/mediascale-agent\n")
	b.WriteString("  - name: validate\n    steps:\n")
	b.WriteString("      - name: MediaServerInstalled\n        action: ExecuteBash\n        inputs:\n          commands:\n")
	b.WriteString("            - test -s /usr/lib64/nginx/modules/ngx_rtmp_module.so\n")
	b.WriteString("            - nginx -v\n")
	b.WriteString("            - test -x /usr/local/bin/mediascale-agent\n")
	return b.String()
}

// ownLaunchTemplates are the launch templates the pools bring (not
// managed), each once.
func ownLaunchTemplates(f pool.File) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range f.Pools {
		if id := p.LaunchTemplate.ID; id != pool.Managed && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
