// Command infra is the mediascale CDK app. It synthesizes the stack of the
// environment chosen with -c env=NAME from that environment's settings in
// cdk.json and its pool file.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/mediascale/mediascale/infra/stack"
	"github.com/mediascale/mediascale/shared/pool"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	if err := build(app); err != nil {
		fmt.Fprintf(os.Stderr, "mediascale synth: %v\n", err)
		os.Exit(1)
	}
	app.Synth(nil)
}

func build(app awscdk.App) error {
	env, ok := app.Node().TryGetContext(jsii.String("env")).(string)
	if !ok || env == "" {
		return fmt.Errorf("no environment chosen: pass -c env=dev|staging|prod")
	}
	settings, err := stack.SettingsFor(app.Node().TryGetContext(jsii.String("environments")), env)
	if err != nil {
		return err
	}
	// -c pools=FILE deploys another pool file under the environment's
	// settings, validated as usual: the local cloud's short-period pools.
	if file, ok := app.Node().TryGetContext(jsii.String("pools")).(string); ok && file != "" {
		settings.Config = file
	}
	pools, err := pool.LoadFile(settings.Config)
	if err != nil {
		return err
	}
	if err := stack.CheckPools(env, settings, pools); err != nil {
		return err
	}
	environments := app.Node().TryGetContext(jsii.String("environments"))
	other := func(name string) (stack.Settings, pool.File, error) {
		s, err := stack.SettingsFor(environments, name)
		if err != nil {
			return stack.Settings{}, pool.File{}, err
		}
		f, err := pool.LoadFile(s.Config)
		return s, f, err
	}
	if err := stack.CheckFallbacks(env, settings, pools, other); err != nil {
		return err
	}
	assets := "build"
	if dir := os.Getenv("MEDIASCALE_ASSETS"); dir != "" {
		assets = dir
	}
	for _, fn := range stack.FunctionNames() {
		if _, err := os.Stat(filepath.Join(assets, fn, "bootstrap")); err != nil {
			return fmt.Errorf("function %s is not built (%v): run make build first", fn, err)
		}
	}
	if _, err := os.Stat(filepath.Join(assets, "agent", "mediascale-agent")); err != nil {
		return fmt.Errorf("the node agent is not built (%v): run make build first", err)
	}
	_, err = stack.New(app, stack.Props{Env: env, Settings: settings, Pools: pools, AssetRoot: assets, RepoRoot: "."})
	return err
}
