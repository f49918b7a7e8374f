package motoserver

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestASubnetAskedForTwiceIsTheOneTheFirstAttemptMade(t *testing.T) {
	ctx := context.Background()
	c := ec2.NewFromConfig(Start(t).Config(ctx))
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.40.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(vpc.Vpc.VpcId)
	first, err := Subnet(ctx, c, id, "10.40.0.0/20", "us-east-1a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := Subnet(ctx, c, id, "10.40.0.0/20", "us-east-1a")
	if err != nil || again != first {
		t.Fatalf("second attempt: %q, %v; want %q", again, err, first)
	}
	if _, err := Subnet(ctx, c, id, "10.40.8.0/24", "us-east-1a"); err == nil {
		t.Fatal("a subnet overlapping another of a different range was accepted")
	}
}

func TestATableAskedForTwiceIsTheOneTheFirstAttemptMade(t *testing.T) {
	ctx := context.Background()
	db := dynamodb.NewFromConfig(Start(t).Config(ctx))
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String("nodes"),
		BillingMode:          dbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dbtypes.ScalarAttributeTypeS}},
		KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dbtypes.KeyTypeHash}},
	}
	if err := Table(ctx, db, in); err != nil {
		t.Fatal(err)
	}
	if err := Table(ctx, db, in); err != nil {
		t.Fatalf("the same table again: %v", err)
	}
	other := *in
	other.KeySchema = []dbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: dbtypes.KeyTypeHash}}
	other.AttributeDefinitions = []dbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: dbtypes.ScalarAttributeTypeS}}
	if err := Table(ctx, db, &other); err == nil {
		t.Fatal("a table of another key schema under the same name was accepted")
	}
}
