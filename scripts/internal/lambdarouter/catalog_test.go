package lambdarouter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// regionalLambda is the local Lambda API of several regions: functions by
// region, and the region of every call, read from its options as the SDK
// client would.
type regionalLambda struct {
	functions map[string]map[string]map[string]string // region -> name -> environment
	asked     []string
}

func (l *regionalLambda) GetFunctionConfiguration(_ context.Context, in *lambda.GetFunctionConfigurationInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error) {
	o := lambda.Options{Region: "us-east-1"}
	for _, f := range opts {
		f(&o)
	}
	l.asked = append(l.asked, o.Region)
	env, ok := l.functions[o.Region][aws.ToString(in.FunctionName)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found: " + aws.ToString(in.FunctionName))}
	}
	return &lambda.GetFunctionConfigurationOutput{
		FunctionArn: aws.String("arn:aws:lambda:" + o.Region + ":123456789012:function:" + aws.ToString(in.FunctionName)),
		Environment: &types.EnvironmentResponse{Variables: env},
	}, nil
}

func TestAFunctionRunsInTheRegionItWasDeployedTo(t *testing.T) {
	east, west := t.TempDir(), t.TempDir()
	for dir, name := range map[string]string{east: "mediascale-dev-trigger", west: "mediascale-devusw2-trigger"} {
		tmpl := `{"Resources":{"Fn":{"Type":"AWS::Lambda::Function","Properties":{"FunctionName":"` + name + `"},"Metadata":{"aws:asset:path":"asset.fn"}}}}`
		if err := os.WriteFile(filepath.Join(dir, "stack.template.json"), []byte(tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	api := &regionalLambda{functions: map[string]map[string]map[string]string{
		"us-east-1": {"mediascale-dev-trigger": {"MEDIASCALE_TABLE": "east"}},
		"us-west-2": {"mediascale-devusw2-trigger": {"MEDIASCALE_TABLE": "west"}},
	}}
	c := DeployedCatalog{Lambda: api, Regions: []string{"us-east-1", "us-west-2"}, AssemblyDirs: []string{east, west}}
	fn, err := c.Resolve(context.Background(), "arn:aws:lambda:us-west-2:123456789012:function:mediascale-devusw2-trigger")
	if err != nil {
		t.Fatal(err)
	}
	if fn.Region != "us-west-2" || fn.Env["AWS_REGION"] != "us-west-2" || fn.Env["AWS_DEFAULT_REGION"] != "us-west-2" ||
		fn.Env["MEDIASCALE_TABLE"] != "west" || fn.Dir != filepath.Join(west, "asset.fn") {
		t.Fatalf("resolved %+v", fn)
	}
	fn, err = c.Resolve(context.Background(), "mediascale-dev-trigger")
	if err != nil || fn.Region != "us-east-1" || fn.Env["AWS_REGION"] != "us-east-1" || fn.Dir != filepath.Join(east, "asset.fn") {
		t.Fatalf("resolved %+v, %v", fn, err)
	}
	var unknown ErrUnknownFunction
	if _, err := c.Resolve(context.Background(), "mediascale-qa-trigger"); !errors.As(err, &unknown) {
		t.Fatalf("a function in no region: %v", err)
	}
}
