package motoserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Table creates a table. When the SDK retried a CreateTable whose answer it
// lost (as with Subnet), moto refuses the retry with ResourceInUseException
// for the table the first attempt made; that table, if it has the key
// schema asked for, is the one wanted.
func Table(ctx context.Context, db *dynamodb.Client, in *dynamodb.CreateTableInput) error {
	_, err := db.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err == nil || !errors.As(err, &inUse) {
		return err
	}
	out, derr := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	if derr != nil || len(out.Table.KeySchema) != len(in.KeySchema) {
		return fmt.Errorf("%w (and no table of that key schema found: %v)", err, derr)
	}
	for i, k := range in.KeySchema {
		if got := out.Table.KeySchema[i]; *got.AttributeName != *k.AttributeName || got.KeyType != k.KeyType {
			return fmt.Errorf("%w (the table there has another key schema)", err)
		}
	}
	return nil
}
