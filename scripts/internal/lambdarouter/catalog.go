package lambdarouter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/mediascale/mediascale/scripts/internal/lambdaruntime"
)

// FunctionConfigReader is the part of the Lambda client the catalog uses.
type FunctionConfigReader interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// DeployedCatalog resolves functions from what was really deployed: the
// configuration (environment, timeout, memory) from the local Lambda API,
// and the code from the asset the synthesized template names for that
// function, which is exactly what cdk deploy uploaded. A local cloud with
// stacks in several regions (a pool and its fallback) finds each function
// in the region it was deployed to, and runs it there: its AWS_REGION is
// that region's, as Lambda sets it.
type DeployedCatalog struct {
	Lambda FunctionConfigReader
	// Regions are searched in order; the first is the local cloud's own.
	Regions []string
	// AssemblyDirs are the cloud assemblies (cdk.out) of the deployed
	// stacks.
	AssemblyDirs []string
}

// Resolve implements Catalog.
func (c DeployedCatalog) Resolve(ctx context.Context, nameOrARN string) (lambdaruntime.Function, error) {
	name := FunctionName(nameOrARN)
	var out *lambda.GetFunctionConfigurationOutput
	var region string
	for _, r := range c.Regions {
		var err error
		out, err = c.Lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: &name},
			func(o *lambda.Options) { o.Region = r })
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return lambdaruntime.Function{}, fmt.Errorf("reading configuration of %s in %s: %w", name, r, err)
		}
		region = r
		break
	}
	if region == "" {
		return lambdaruntime.Function{}, ErrUnknownFunction{Name: nameOrARN}
	}
	var dir string
	var err error
	for _, assembly := range c.AssemblyDirs {
		if dir, err = AssetDir(assembly, name); err == nil {
			break
		}
	}
	if err != nil {
		return lambdaruntime.Function{}, err
	}
	fn := lambdaruntime.Function{Name: name, Dir: dir, Timeout: 3 * time.Second, MemoryMB: 128, Region: region}
	if out.FunctionArn != nil {
		fn.ARN = *out.FunctionArn
	}
	if out.Timeout != nil {
		fn.Timeout = time.Duration(*out.Timeout) * time.Second
	}
	if out.MemorySize != nil {
		fn.MemoryMB = int(*out.MemorySize)
	}
	fn.Env = map[string]string{"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
	if out.Environment != nil {
		for k, v := range out.Environment.Variables {
			fn.Env[k] = v
		}
	}
	return fn, nil
}

// FunctionName takes the name out of a name, a partial ARN or a full ARN
// with or without a qualifier.
func FunctionName(nameOrARN string) string {
	parts := strings.Split(nameOrARN, ":")
	for i, p := range parts {
		if p == "function" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return nameOrARN
}

// AssetDir finds the code folder of a function by its FunctionName in the
// synthesized templates of a cloud assembly.
func AssetDir(assemblyDir, name string) (string, error) {
	templates, _ := filepath.Glob(filepath.Join(assemblyDir, "*.template.json"))
	for _, path := range templates {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		var tmpl struct {
			Resources map[string]struct {
				Type       string         `json:"Type"`
				Properties map[string]any `json:"Properties"`
				Metadata   map[string]any `json:"Metadata"`
			} `json:"Resources"`
		}
		if err := json.Unmarshal(raw, &tmpl); err != nil {
			return "", fmt.Errorf("reading %s: %w", path, err)
		}
		for id, r := range tmpl.Resources {
			if r.Type != "AWS::Lambda::Function" || r.Properties["FunctionName"] != name {
				continue
			}
			asset, ok := r.Metadata["aws:asset:path"].(string)
			if !ok {
				return "", fmt.Errorf("%s: function %s (%s) has no aws:asset:path metadata", path, name, id)
			}
			return filepath.Join(assemblyDir, asset), nil
		}
	}
	return "", fmt.Errorf("function %s is deployed but no template in %s defines its code", name, assemblyDir)
}
