// Command msctl is the operator's tool: list the fleet, pause and resume
// a pool, request a manual scale step (or a dry run of one), and read an
// execution's outcome. It talks to whatever AWS the SDK's configuration
// points at: a real account, or the local cloud after `source
// .localcloud/env`.
//
//	msctl [--env dev] fleet [--pool NAME]
//	msctl [--env dev] pause POOL --reason TEXT
//	msctl [--env dev] resume POOL
//	msctl [--env dev] scale POOL out|in COUNT [--dry-run] --reason TEXT
//	msctl [--env dev] status EXECUTION_ARN
//	msctl [--env dev] dispatch POOL [--class CLASS] [--url URL]
//	msctl [--env dev] show add POOL --start RFC3339 --peak SESSIONS [--ramp D] [--id NAME] --reason TEXT
//	msctl [--env dev] show list [--pool NAME] | show cancel POOL ID
//	msctl simulate --pools FILE --pool NAME --trace FILE [--model FILE] [--out DIR]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/coldstart"
	"github.com/mediascale/mediascale/shared/dispatch"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/release"
)

func main() {
	global := flag.NewFlagSet("msctl", flag.ExitOnError)
	env := global.String("env", envOr("MEDIASCALE_ENV", "dev"), "environment")
	_ = global.Parse(os.Args[1:])
	args := global.Args()
	if len(args) == 0 {
		usage()
	}
	if args[0] == "simulate" {
		if err := simulate(args[1:]); err != nil {
			fail(err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fail(err)
	}
	c := &ctl{cfg: cfg, env: *env}
	switch args[0] {
	case "fleet":
		err = c.fleet(ctx, args[1:])
	case "pause", "resume":
		err = c.pause(ctx, args[0] == "pause", args[1:])
	case "scale":
		err = c.scale(ctx, args[1:])
	case "status":
		err = c.status(ctx, args[1:])
	case "dispatch":
		err = c.dispatch(ctx, args[1:])
	case "show":
		err = c.show(ctx, args[1:])
	default:
		usage()
	}
	if err != nil {
		fail(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: msctl [--env dev] fleet [--pool NAME] | pause POOL --reason TEXT | resume POOL | scale POOL out|in COUNT [--dry-run] --reason TEXT | status EXECUTION_ARN | dispatch POOL [--class CLASS] [--url URL] | show add|list|cancel ... | simulate --pools FILE --pool NAME --trace FILE [--model FILE] [--out DIR]")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "msctl: %v\n", err)
	os.Exit(1)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// operator names whoever runs the tool, for the record.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return envOr("USER", "unknown")
}

type ctl struct {
	cfg aws.Config
	env string
}

// store finds the environment's node table among its stack's resources.
func (c *ctl) store(ctx context.Context) (*fleet.Store, error) {
	p := cloudformation.NewListStackResourcesPaginator(cloudformation.NewFromConfig(c.cfg), &cloudformation.ListStackResourcesInput{StackName: aws.String("mediascale-" + c.env)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading stack mediascale-%s: %w", c.env, err)
		}
		for _, r := range page.StackResourceSummaries {
			if aws.ToString(r.ResourceType) == "AWS::DynamoDB::Table" {
				return fleet.NewStore(dynamodb.NewFromConfig(c.cfg), aws.ToString(r.PhysicalResourceId), time.Now), nil
			}
		}
	}
	return nil, fmt.Errorf("stack mediascale-%s has no node table", c.env)
}

// dispatch asks the environment's entry dispatcher for a node, as the
// application's session service would, and prints its answer. The URL is
// --url, else MEDIASCALE_DISPATCH_URL (the local cloud sets it), else the
// function's own URL configuration.
func (c *ctl) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: msctl dispatch POOL [--class CLASS] [--url URL]")
	}
	fs := flag.NewFlagSet("dispatch", flag.ExitOnError)
	class := fs.String("class", "", "the session's admission class")
	target := fs.String("url", os.Getenv("MEDIASCALE_DISPATCH_URL"), "the dispatcher's function URL")
	_ = fs.Parse(args[1:])
	if *target == "" {
		name := "mediascale-" + c.env + "-dispatch"
		out, err := lambda.NewFromConfig(c.cfg).GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("finding the URL of %s: %w", name, err)
		}
		*target = aws.ToString(out.FunctionUrl)
	}
	client := dispatch.NewClient(*target, c.cfg.Region, c.cfg.Credentials, &http.Client{Timeout: 10 * time.Second})
	a, err := client.Dispatch(ctx, args[0], *class)
	var rej *dispatch.Rejection
	if errors.As(err, &rej) {
		out, _ := json.MarshalIndent(rej.Problem, "", "  ")
		fmt.Println(string(out))
		return err
	}
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(a, "", "  ")
	fmt.Println(string(out))
	return nil
}

func (c *ctl) pools(ctx context.Context) (pool.File, error) {
	return coldstart.ReadPools(ctx, ssm.NewFromConfig(c.cfg), "/mediascale/"+c.env+"/pools")
}

// poolsAndStore reads the environment's published pool file and finds its
// node table.
func (c *ctl) poolsAndStore(ctx context.Context) (pool.File, *fleet.Store, error) {
	pools, err := c.pools(ctx)
	if err != nil {
		return pool.File{}, nil, err
	}
	store, err := c.store(ctx)
	return pools, store, err
}

func (c *ctl) fleet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ExitOnError)
	only := fs.String("pool", "", "one pool")
	_ = fs.Parse(args)
	pools, store, err := c.poolsAndStore(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POOL\tNODE\tSTATE\tWEIGHT\tAZ\tTYPE\tAGE\tINSTANCE\tNOTE")
	for _, p := range pools.Pools {
		if *only != "" && p.Name != *only {
			continue
		}
		st, err := store.Status(ctx, p.Name)
		if err != nil {
			return err
		}
		if st.Paused {
			fmt.Fprintf(w, "%s\t(paused by %s: %s)\t\t\t\t\t\t\t\n", p.Name, st.Operator, st.Reason)
		}
		if d, ok, err := store.LastDecision(ctx, p.Name); err != nil {
			return err
		} else if ok {
			dir := d.Direction
			if dir == "" {
				dir = "hold"
			}
			fmt.Fprintf(w, "%s\t(controller %s ago: %s %d -> %d: %s)\t\t\t\t\t\t\t\n", p.Name,
				time.Since(d.At).Round(time.Second), dir, d.Current, d.Desired, d.Reason)
		}
		nodes, err := store.ListNodes(ctx, p.Name)
		if err != nil {
			return err
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].CreatedAt.Before(nodes[j].CreatedAt) })
		for _, n := range nodes {
			note := n.Reason
			// The state alone does not say that a node on its way in
			// is headed for the warm pool.
			if n.Goal == events.GoalWarm && n.State != fleet.Warm {
				note = strings.TrimSpace("for the warm pool " + note)
			}
			if n.ForcedSessions != nil && *n.ForcedSessions > 0 {
				note = fmt.Sprintf("%s (%d sessions forced)", note, *n.ForcedSessions)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Name, n.ID, n.State, n.Weight, n.AZ, n.InstanceType,
				time.Since(n.CreatedAt).Round(time.Second), n.InstanceID, note)
		}
	}
	return w.Flush()
}

func (c *ctl) pause(ctx context.Context, paused bool, args []string) error {
	if len(args) < 1 {
		usage()
	}
	name := args[0]
	fs := flag.NewFlagSet("pause", flag.ExitOnError)
	reason := fs.String("reason", "", "why")
	_ = fs.Parse(args[1:])
	if paused && *reason == "" {
		return fmt.Errorf("pause needs --reason: the next operator will want to know")
	}
	pools, err := c.pools(ctx)
	if err != nil {
		return err
	}
	if _, ok := pools.Find(name); !ok {
		return fmt.Errorf("pool %q is not configured in %s", name, c.env)
	}
	store, err := c.store(ctx)
	if err != nil {
		return err
	}
	if err := store.SetPaused(ctx, name, paused, *reason, operator()); err != nil {
		return err
	}
	if paused {
		fmt.Printf("pool %s paused: its alarms are recorded and not acted on (%s)\n", name, *reason)
	} else {
		fmt.Printf("pool %s resumed: alarms act again\n", name)
	}
	return nil
}

func (c *ctl) scale(ctx context.Context, args []string) error {
	if len(args) < 3 {
		usage()
	}
	name, direction := args[0], args[1]
	count, err := strconv.Atoi(args[2])
	if err != nil {
		return fmt.Errorf("count %q is not a number", args[2])
	}
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	dry := fs.Bool("dry-run", false, "plan and report, change nothing")
	reason := fs.String("reason", "", "why")
	_ = fs.Parse(args[3:])
	if *reason == "" {
		return fmt.Errorf("scale needs --reason")
	}
	// The trigger acts only on requests of its own account and region.
	who, err := sts.NewFromConfig(c.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("finding the account to ask: %w", err)
	}
	payload, err := json.Marshal(map[string]any{
		"source": events.OperatorSource, "detail-type": events.OperatorDetailType, "time": time.Now().UTC(),
		"account": aws.ToString(who.Account), "region": c.cfg.Region,
		"detail": events.OperatorRequest{Pool: name, Direction: direction, Count: count, DryRun: *dry, Operator: operator(), Reason: *reason},
	})
	if err != nil {
		return err
	}
	out, err := lambda.NewFromConfig(c.cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mediascale-" + c.env + "-trigger"), Payload: payload})
	if err != nil {
		return fmt.Errorf("asking the trigger: %w", err)
	}
	var pretty any
	_ = json.Unmarshal(out.Payload, &pretty)
	b, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Println(string(b))
	if out.FunctionError != nil {
		return fmt.Errorf("the trigger refused the request")
	}
	return nil
}

func (c *ctl) status(ctx context.Context, args []string) error {
	if len(args) != 1 {
		usage()
	}
	d, err := sfn.NewFromConfig(c.cfg).DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(args[0])})
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", d.Status, aws.ToString(d.Name))
	if d.Output != nil {
		var pretty any
		_ = json.Unmarshal([]byte(*d.Output), &pretty)
		b, _ := json.MarshalIndent(pretty, "", "  ")
		fmt.Println(string(b))
	}
	if d.Error != nil {
		fmt.Printf("%s: %s\n", aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	if d.Output == nil {
		return nil
	}
	var sum release.Summary
	if err := json.Unmarshal([]byte(*d.Output), &sum); err != nil || sum.Pool == "" || len(sum.Nodes) == 0 {
		return nil
	}
	return c.nodesNow(ctx, sum)
}

// nodesNow prints, beside what the release summary said of each node, the
// node's record as it is now: the reconciler may have finished a node the
// execution left in the middle of a step since.
func (c *ctl) nodesNow(ctx context.Context, sum release.Summary) error {
	store, err := c.store(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tAT RELEASE\tNOW\tWEIGHT\tINSTANCE\tREASON")
	for _, n := range sum.Nodes {
		at := n.State
		if n.Unfinished {
			at += " (unfinished)"
		}
		now, weight, reason := "no record", "", ""
		switch rec, err := store.GetNode(ctx, sum.Pool, n.Node); {
		case errors.Is(err, fleet.ErrNotFound):
		case err != nil:
			return err
		default:
			now, weight, reason = string(rec.State), strconv.Itoa(rec.Weight), rec.Reason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, at, now, weight, n.InstanceID, reason)
	}
	return w.Flush()
}
