package stack

import (
	"fmt"
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/shared/pool"
)

// amiParameter is the public SSM parameter of the newest Amazon Linux 2023
// arm64 image, resolved by CloudFormation at deploy time.
const amiParameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"

// network is where nodes and the functions that reach them live: the
// pools' VPC (created, or the environment's), and what the stack creates
// for pools that say "managed".
type network struct {
	vpcID   *string
	subnets map[string]awsec2.CfnSubnet // managed node subnets, by zone
	// functionSubnets and functionGroup place the probe and drain
	// functions; every node security group admits functionGroup.
	functionSubnets []*string
	functionGroup   awsec2.CfnSecurityGroup
	// launchTemplates and nodeGroups are by pool name.
	launchTemplates map[string]awsec2.CfnLaunchTemplate
	nodeGroups      map[string]awsec2.CfnSecurityGroup
	balancers       map[string]balancer
}

// nodeVpcCidr is the address range of the VPC the stack creates.
const nodeVpcCidr = "10.40.0.0/16"

// managedZones lists the zones whose subnet the stack must create.
func managedZones(f pool.File) []string {
	seen := map[string]bool{}
	for _, p := range f.Pools {
		for _, pl := range p.Placement {
			if pl.Subnet == pool.Managed {
				seen[pl.AZ] = true
			}
		}
	}
	zones := make([]string, 0, len(seen))
	for z := range seen {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	return zones
}

// newNetwork sets up the pools' network: the environment's VPC, or one the
// stack creates with public node subnets and private function subnets; a
// security group for the probe, drain and heal functions that every node
// security group admits on the health and media ports; and, for pools with
// a managed launch template, a node security group, an instance role for
// SSM and a launch template that enforces IMDSv2, encrypted volumes and no
// SSH key.
func (s *Stack) newNetwork(p Props) (*network, error) {
	n := &network{subnets: map[string]awsec2.CfnSubnet{}, launchTemplates: map[string]awsec2.CfnLaunchTemplate{},
		nodeGroups: map[string]awsec2.CfnSecurityGroup{}, balancers: map[string]balancer{}}
	if net := p.Settings.Network; net.VpcID != "" {
		n.vpcID = jsii.String(net.VpcID)
		n.functionSubnets = *jsii.Strings(net.FunctionSubnets...)
	} else if err := s.newVpc(p, n); err != nil {
		return nil, err
	}
	n.functionGroup = awsec2.NewCfnSecurityGroup(s.Stack, jsii.String("FunctionGroup"), &awsec2.CfnSecurityGroupProps{
		VpcId:            n.vpcID,
		GroupDescription: jsii.String(fmt.Sprintf("mediascale %s probe and drain functions: no inbound; out to the nodes and AWS APIs", p.Env)),
	})
	// The environment's own node security groups admit the functions on
	// every port a pool with its own launch template probes.
	ports := map[float64]bool{}
	for _, pl := range p.Pools.Pools {
		if pl.LaunchTemplate.ID != pool.Managed {
			ports[float64(pl.Probe.HealthPort)], ports[float64(pl.Probe.MediaPort)] = true, true
		}
	}
	sorted := make([]float64, 0, len(ports))
	for port := range ports {
		sorted = append(sorted, port)
	}
	sort.Float64s(sorted)
	for i, sg := range p.Settings.Network.NodeSecurityGroups {
		for _, port := range sorted {
			awsec2.NewCfnSecurityGroupIngress(s.Stack, jsii.String(fmt.Sprintf("NodeGroup%dFromFunctionsPort%g", i+1, port)), &awsec2.CfnSecurityGroupIngressProps{
				GroupId: jsii.String(sg), IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(port), ToPort: jsii.Number(port),
				SourceSecurityGroupId: n.functionGroup.AttrGroupId(),
				Description:           jsii.String(fmt.Sprintf("mediascale %s probe and drain functions", p.Env)),
			})
		}
	}
	s.newLaunchTemplates(p, n)
	return n, nil
}

// newVpc creates the VPC of an environment that names none: a public
// subnet per managed zone for the nodes, which serve the internet directly,
// and a private subnet per zone for the functions, which reach the AWS APIs
// through one NAT gateway (DynamoDB through a free gateway endpoint). The
// VPC's rejected and accepted flows are logged.
func (s *Stack) newVpc(p Props, n *network) error {
	zones := managedZones(p.Pools)
	if len(zones) == 0 {
		return fmt.Errorf("environment %s names no VPC and no pool has managed subnets: there is nowhere to put the nodes", p.Env)
	}
	vpc := awsec2.NewCfnVPC(s.Stack, jsii.String("NodeVpc"), &awsec2.CfnVPCProps{
		CidrBlock: jsii.String(nodeVpcCidr), EnableDnsHostnames: jsii.Bool(true), EnableDnsSupport: jsii.Bool(true),
		Tags: &[]*awscdk.CfnTag{{Key: jsii.String("Name"), Value: jsii.String("mediascale-" + p.Env)}},
	})
	n.vpcID = vpc.Ref()
	igw := awsec2.NewCfnInternetGateway(s.Stack, jsii.String("NodeIgw"), &awsec2.CfnInternetGatewayProps{})
	attach := awsec2.NewCfnVPCGatewayAttachment(s.Stack, jsii.String("NodeIgwAttachment"), &awsec2.CfnVPCGatewayAttachmentProps{
		VpcId: vpc.Ref(), InternetGatewayId: igw.Ref(),
	})
	public := awsec2.NewCfnRouteTable(s.Stack, jsii.String("NodeRoutes"), &awsec2.CfnRouteTableProps{VpcId: vpc.Ref()})
	def := awsec2.NewCfnRoute(s.Stack, jsii.String("NodeDefaultRoute"), &awsec2.CfnRouteProps{
		RouteTableId: public.Ref(), DestinationCidrBlock: jsii.String("0.0.0.0/0"), GatewayId: igw.Ref(),
	})
	def.AddDependency(attach)
	private := awsec2.NewCfnRouteTable(s.Stack, jsii.String("FunctionRoutes"), &awsec2.CfnRouteTableProps{VpcId: vpc.Ref()})
	for i, z := range zones {
		id := fmt.Sprintf("NodeSubnet%d", i+1)
		sn := awsec2.NewCfnSubnet(s.Stack, jsii.String(id), &awsec2.CfnSubnetProps{
			VpcId: vpc.Ref(), AvailabilityZone: jsii.String(z),
			CidrBlock:           jsii.String(fmt.Sprintf("10.40.%d.0/20", i*16)),
			MapPublicIpOnLaunch: jsii.Bool(true),
			Tags:                &[]*awscdk.CfnTag{{Key: jsii.String("Name"), Value: jsii.String(fmt.Sprintf("mediascale-%s-%s", p.Env, z))}},
		})
		awsec2.NewCfnSubnetRouteTableAssociation(s.Stack, jsii.String(id+"Routes"), &awsec2.CfnSubnetRouteTableAssociationProps{
			SubnetId: sn.Ref(), RouteTableId: public.Ref(),
		})
		n.subnets[z] = sn
		fid := fmt.Sprintf("FunctionSubnet%d", i+1)
		fsn := awsec2.NewCfnSubnet(s.Stack, jsii.String(fid), &awsec2.CfnSubnetProps{
			VpcId: vpc.Ref(), AvailabilityZone: jsii.String(z),
			CidrBlock: jsii.String(fmt.Sprintf("10.40.%d.0/24", 128+i)),
			Tags:      &[]*awscdk.CfnTag{{Key: jsii.String("Name"), Value: jsii.String(fmt.Sprintf("mediascale-%s-functions-%s", p.Env, z))}},
		})
		awsec2.NewCfnSubnetRouteTableAssociation(s.Stack, jsii.String(fid+"Routes"), &awsec2.CfnSubnetRouteTableAssociationProps{
			SubnetId: fsn.Ref(), RouteTableId: private.Ref(),
		})
		n.functionSubnets = append(n.functionSubnets, fsn.Ref())
	}
	// One NAT gateway, not one per zone: the functions only call AWS APIs
	// and a zone outage costs a few probes, not a bill for three gateways.
	eip := awsec2.NewCfnEIP(s.Stack, jsii.String("FunctionNatAddress"), &awsec2.CfnEIPProps{Domain: jsii.String("vpc")})
	eip.AddDependency(attach)
	nat := awsec2.NewCfnNatGateway(s.Stack, jsii.String("FunctionNat"), &awsec2.CfnNatGatewayProps{
		SubnetId: n.subnets[zones[0]].Ref(), AllocationId: eip.AttrAllocationId(),
	})
	awsec2.NewCfnRoute(s.Stack, jsii.String("FunctionDefaultRoute"), &awsec2.CfnRouteProps{
		RouteTableId: private.Ref(), DestinationCidrBlock: jsii.String("0.0.0.0/0"), NatGatewayId: nat.Ref(),
	})
	awsec2.NewCfnVPCEndpoint(s.Stack, jsii.String("DynamoDbEndpoint"), &awsec2.CfnVPCEndpointProps{
		VpcId: vpc.Ref(), VpcEndpointType: jsii.String("Gateway"),
		ServiceName:   jsii.String(fmt.Sprintf("com.amazonaws.%s.dynamodb", *awscdk.Aws_REGION())),
		RouteTableIds: &[]interface{}{private.Ref()},
	})
	flowLogs := awslogs.NewLogGroup(s.Stack, jsii.String("NodeVpcFlowLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String(fmt.Sprintf("/mediascale/%s/vpc-flow-logs", p.Env)),
		Retention:     logRetentions[p.Settings.LogRetentionDays],
		RemovalPolicy: removalOf(p.Settings),
	})
	flowRole := awsiam.NewRole(s.Stack, jsii.String("NodeVpcFlowLogsRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("vpc-flow-logs.amazonaws.com"), nil),
		Description: jsii.String("mediascale " + p.Env + " VPC flow logs"),
	})
	flowLogs.GrantWrite(flowRole)
	awsec2.NewCfnFlowLog(s.Stack, jsii.String("NodeVpcFlowLog"), &awsec2.CfnFlowLogProps{
		ResourceId: vpc.Ref(), ResourceType: jsii.String("VPC"), TrafficType: jsii.String("ALL"),
		LogDestinationType: jsii.String("cloud-watch-logs"), LogGroupName: flowLogs.LogGroupName(),
		DeliverLogsPermissionArn: flowRole.RoleArn(),
	})
	return nil
}

// newLaunchTemplates creates, for each pool with a managed launch template,
// its node security group and launch template.
func (s *Stack) newLaunchTemplates(p Props, n *network) {
	needed := false
	for _, pl := range p.Pools.Pools {
		needed = needed || pl.LaunchTemplate.ID == pool.Managed
	}
	if !needed {
		return
	}
	ami := awscdk.NewCfnParameter(s.Stack, jsii.String("NodeImage"), &awscdk.CfnParameterProps{
		Type:        jsii.String("AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"),
		Default:     jsii.String(amiParameter),
		Description: jsii.String("AMI of managed launch templates: Amazon Linux 2023 arm64"),
	})
	role := awsiam.NewRole(s.Stack, jsii.String("NodeRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String("mediascale " + p.Env + " media node: SSM Run Command and its node agent"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("AmazonSSMManagedInstanceCore")),
		},
	})
	s.nodeRole = role
	profile := awsiam.NewCfnInstanceProfile(s.Stack, jsii.String("NodeProfile"), &awsiam.CfnInstanceProfileProps{
		Roles: &[]interface{}{role.RoleName()},
	})
	for _, pl := range p.Pools.Pools {
		if pl.LaunchTemplate.ID != pool.Managed {
			continue
		}
		id := pascal(pl.Name)
		fromFunctions := func(port int, what string) *awsec2.CfnSecurityGroup_IngressProperty {
			return &awsec2.CfnSecurityGroup_IngressProperty{
				IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(port), ToPort: jsii.Number(port),
				SourceSecurityGroupId: n.functionGroup.AttrGroupId(), Description: jsii.String(what + " from the probe, drain and heal functions"),
			}
		}
		sg := awsec2.NewCfnSecurityGroup(s.Stack, jsii.String(id+"NodeGroup"), &awsec2.CfnSecurityGroupProps{
			VpcId:            n.vpcID,
			GroupDescription: jsii.String(fmt.Sprintf("mediascale %s %s nodes: media and health ports only", p.Env, pl.Name)),
			SecurityGroupIngress: &[]interface{}{
				&awsec2.CfnSecurityGroup_IngressProperty{
					IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(pl.Probe.MediaPort), ToPort: jsii.Number(pl.Probe.MediaPort),
					CidrIp: jsii.String("0.0.0.0/0"), Description: jsii.String("media clients"),
				},
				fromFunctions(pl.Probe.HealthPort, "health and session stats"),
			},
		})
		nagAccept(sg, "AwsSolutions-EC23", nagPublicMediaPort)
		n.nodeGroups[pl.Name] = sg
		n.launchTemplates[pl.Name] = awsec2.NewCfnLaunchTemplate(s.Stack, jsii.String(id+"LaunchTemplate"), &awsec2.CfnLaunchTemplateProps{
			LaunchTemplateName: jsii.String(fmt.Sprintf("mediascale-%s-%s", p.Env, pl.Name)),
			LaunchTemplateData: &awsec2.CfnLaunchTemplate_LaunchTemplateDataProperty{
				ImageId:            ami.ValueAsString(),
				IamInstanceProfile: &awsec2.CfnLaunchTemplate_IamInstanceProfileProperty{Arn: profile.AttrArn()},
				SecurityGroupIds:   &[]*string{sg.AttrGroupId()},
				MetadataOptions: &awsec2.CfnLaunchTemplate_MetadataOptionsProperty{
					HttpTokens: jsii.String("required"), HttpEndpoint: jsii.String("enabled"), HttpPutResponseHopLimit: jsii.Number(1),
				},
				BlockDeviceMappings: &[]interface{}{&awsec2.CfnLaunchTemplate_BlockDeviceMappingProperty{
					DeviceName: jsii.String("/dev/xvda"),
					Ebs: &awsec2.CfnLaunchTemplate_EbsProperty{
						Encrypted: jsii.Bool(true), VolumeType: jsii.String("gp3"), VolumeSize: jsii.Number(16), DeleteOnTermination: jsii.Bool(true),
					},
				}},
				Monitoring: &awsec2.CfnLaunchTemplate_MonitoringProperty{Enabled: jsii.Bool(true)},
			},
		})
	}
}

// balancer is a stack-made load balancer: its listener and the stable and
// canary target groups the shift moves nodes through.
type balancer struct {
	listener, stable, canary string
}

// newBalancers creates, for each pool whose loadBalancer says "managed", a
// load balancer of the pool's mode in the pool's subnets, an IP target
// group for serving nodes and one for nodes being shifted in, and a
// listener on the pool's port forwarding everything to the stable group.
// (moto's CloudFormation also knows only this plain form of forward.)
func (s *Stack) newBalancers(p Props) {
	for _, pl := range p.Pools.Pools {
		lb := pl.Traffic.LoadBalancer
		if lb == nil || lb.ListenerArn != pool.Managed {
			continue
		}
		id := pascal(pl.Name)
		var subnets []interface{}
		for _, z := range pl.Placement {
			subnets = append(subnets, s.network.subnets[z.AZ].Ref())
		}
		typ, proto := "network", "TCP"
		if pl.Traffic.Mode == pool.TrafficALB {
			typ, proto = "application", "HTTP"
		}
		balancerName := fmt.Sprintf("ms-%s-%s", p.Env, pl.Name)
		if len(balancerName) > 32 {
			balancerName = balancerName[:32]
		}
		nlb := awselasticloadbalancingv2.NewCfnLoadBalancer(s.Stack, jsii.String(id+"Balancer"), &awselasticloadbalancingv2.CfnLoadBalancerProps{
			Name: jsii.String(balancerName), Type: jsii.String(typ), Scheme: jsii.String("internet-facing"), Subnets: &subnets,
		})
		group := func(suffix string) awselasticloadbalancingv2.CfnTargetGroup {
			return awselasticloadbalancingv2.NewCfnTargetGroup(s.Stack, jsii.String(id+pascal(suffix)+"Targets"), &awselasticloadbalancingv2.CfnTargetGroupProps{
				VpcId: s.network.vpcID, TargetType: jsii.String("ip"), Protocol: jsii.String(proto), Port: jsii.Number(lb.Port),
				HealthCheckProtocol: jsii.String("TCP"), HealthCheckPort: jsii.String(fmt.Sprint(lb.Port)),
				HealthCheckIntervalSeconds: jsii.Number(10), HealthyThresholdCount: jsii.Number(2), UnhealthyThresholdCount: jsii.Number(2),
			})
		}
		nagAccept(nlb, "AwsSolutions-ELB2", nagBalancerLogs)
		// ELB2 cannot evaluate a balancer whose subnets are references.
		nagAccept(nlb, "CdkNagValidationFailure", nagBalancerLogs)
		stable, canary := group("stable"), group("canary")
		listener := awselasticloadbalancingv2.NewCfnListener(s.Stack, jsii.String(id+"Listener"), &awselasticloadbalancingv2.CfnListenerProps{
			LoadBalancerArn: nlb.Ref(), Protocol: jsii.String(proto), Port: jsii.Number(lb.Port),
			// Everything to the stable group; the shift step writes the
			// weighted split between stable and canary when a node joins.
			DefaultActions: &[]interface{}{&awselasticloadbalancingv2.CfnListener_ActionProperty{
				Type: jsii.String("forward"), TargetGroupArn: stable.Ref(),
			}},
		})
		s.network.balancers[pl.Name] = balancer{listener: *listener.Ref(), stable: *stable.Ref(), canary: *canary.Ref()}
	}
}

// resolve replaces "managed" ids in a pool with references to what the
// stack created; CloudFormation fills them in when it publishes the config.
func (n *network) resolve(p pool.Pool) pool.Pool {
	out := p
	out.Placement = make([]pool.Placement, len(p.Placement))
	for i, pl := range p.Placement {
		out.Placement[i] = pl
		if pl.Subnet == pool.Managed {
			out.Placement[i].Subnet = *n.subnets[pl.AZ].Ref()
		}
	}
	if lt, ok := n.launchTemplates[p.Name]; ok {
		out.LaunchTemplate.ID = *lt.Ref()
		out.LaunchTemplate.Version = *lt.AttrLatestVersionNumber()
	}
	if b, ok := n.balancers[p.Name]; ok {
		lb := *p.Traffic.LoadBalancer
		lb.ListenerArn, lb.TargetGroupArn, lb.CanaryTargetGroupArn = b.listener, b.stable, b.canary
		out.Traffic.LoadBalancer = &lb
	}
	return out
}
