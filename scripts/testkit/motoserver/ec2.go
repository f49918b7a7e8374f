package motoserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Subnet creates a subnet of cidr in the VPC and returns its id. When the
// SDK retried a CreateSubnet whose answer it lost (moto's server closes a
// connection now and then under load, and the SDK retries), moto refuses
// the retry as a conflict with the subnet the first attempt made; that
// subnet is the one asked for, so it is looked up and returned.
func Subnet(ctx context.Context, c *ec2.Client, vpcID, cidr, az string) (string, error) {
	out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(az)})
	if err == nil {
		return aws.ToString(out.Subnet.SubnetId), nil
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidSubnet.Conflict" {
		return "", err
	}
	found, derr := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		{Name: aws.String("cidr-block"), Values: []string{cidr}},
		{Name: aws.String("availability-zone"), Values: []string{az}},
	}})
	if derr != nil || len(found.Subnets) != 1 {
		return "", fmt.Errorf("%w (and no single subnet %s in %s found: %v)", err, cidr, vpcID, derr)
	}
	return aws.ToString(found.Subnets[0].SubnetId), nil
}
