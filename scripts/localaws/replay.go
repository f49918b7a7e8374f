package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// ReplaySummary is the last line a replay prints.
type ReplaySummary struct {
	Status string `json:"status"`
	// Outcome is the release summary's status (SUCCEEDED, PARTIAL, ...),
	// which says more than the execution's: a scale-out whose warm-pool
	// fill made it while its serving nodes did not ends SUCCEEDED as an
	// execution and PARTIAL in its summary.
	Outcome           string          `json:"outcome,omitempty"`
	Execution         string          `json:"execution"`
	Transitions       int             `json:"transitions"`
	LambdaInvocations int             `json:"lambdaInvocations"`
	LambdaMs          int             `json:"lambdaMs"`
	DurationMs        int64           `json:"durationMs"`
	Nodes             json.RawMessage `json:"nodes"`
	Decision          json.RawMessage `json:"decision,omitempty"`
}

// replay sends an alarm event to the deployed rule's target, follows the
// execution it starts state by state, and prints a one-line summary. The
// exit status is 0 only when the execution SUCCEEDED.
func replay(args []string) (int, error) {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	env := fs.String("env", envOr("MEDIASCALE_ENV", "dev"), "environment")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to follow the execution")
	at := fs.String("at", "now", atUsage)
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return 2, fmt.Errorf("usage: localaws replay [--env dev] [--at now] EVENT_FILE")
	}
	event, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return 2, err
	}
	if event, err = stamped(event, *at); err != nil {
		return 2, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cfg, err := localConfig(ctx)
	if err != nil {
		return 2, err
	}
	out := os.Stdout
	rs, err := RunReplay(ctx, cfg, *env, os.Getenv("MEDIASCALE_ROUTER_URL"), event, out)
	if err != nil {
		return 1, err
	}
	line, _ := json.Marshal(rs)
	fmt.Fprintln(out, string(line))
	if rs.Status != "SUCCEEDED" {
		return 1, nil
	}
	return 0, nil
}

// StatusRefused is a replay whose trigger answered with an error: no
// execution, and EventBridge would deliver the event again.
const StatusRefused = "REFUSED"

// RunReplay does the work of replay, printing progress to w. routerURL,
// when known, lets it count the Lambda milliseconds the replay cost.
func RunReplay(ctx context.Context, cfg aws.Config, env, routerURL string, event []byte, w io.Writer) (ReplaySummary, error) {
	var rs ReplaySummary
	target, err := ruleTarget(ctx, eventbridge.NewFromConfig(cfg), "mediascale-"+env+"-alarms")
	if err != nil {
		return rs, err
	}
	fmt.Fprintf(w, "replay: sending the event to %s, the target of rule mediascale-%s-alarms\n", target, env)
	before := routerStats(ctx, routerURL)
	started := time.Now()
	inv, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: event})
	if err != nil {
		return rs, fmt.Errorf("invoking the trigger: %w", err)
	}
	rs.Decision = inv.Payload
	if inv.FunctionError != nil {
		rs.Status = StatusRefused
		return rs, fmt.Errorf("the trigger refused the event: %s", inv.Payload)
	}
	var d struct {
		Action       string `json:"action"`
		Reason       string `json:"reason"`
		ExecutionARN string `json:"executionArn"`
	}
	if err := json.Unmarshal(inv.Payload, &d); err != nil {
		return rs, fmt.Errorf("reading the trigger's answer %s: %w", inv.Payload, err)
	}
	fmt.Fprintf(w, "replay: trigger decided %s: %s\n", d.Action, d.Reason)
	if d.ExecutionARN == "" {
		rs.Status = "NOT_STARTED"
		rs.Nodes = json.RawMessage("[]")
		return rs, nil
	}
	rs.Execution = d.ExecutionARN
	rs, err = follow(ctx, sfn.NewFromConfig(cfg), rs, started, w)
	rs.LambdaMs = billedSince(before, routerStats(ctx, routerURL))
	return rs, err
}

// routerStats reads the local runtime's counters; nil when the router is
// not known (a replay against something other than the local cloud).
func routerStats(ctx context.Context, url string) map[string]map[string]int {
	if url == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/_localcloud/stats", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var stats map[string]map[string]int
	if json.NewDecoder(resp.Body).Decode(&stats) != nil {
		return nil
	}
	return stats
}

// billedSince is the Lambda milliseconds billed between two readings, the
// trigger's included.
func billedSince(before, after map[string]map[string]int) int {
	total := 0
	for fn, ms := range after["billedMs"] {
		total += ms - before["billedMs"][fn]
	}
	return total
}

// countTransitions counts the state transitions (states entered, as Step
// Functions bills them) and the Lambda tasks of an execution's history.
func countTransitions(hist []sfntypes.HistoryEvent) (transitions, lambdaTasks int) {
	for _, e := range hist {
		switch e.Type {
		case sfntypes.HistoryEventTypeTaskStateEntered, sfntypes.HistoryEventTypeChoiceStateEntered, sfntypes.HistoryEventTypeWaitStateEntered,
			sfntypes.HistoryEventTypeSucceedStateEntered, sfntypes.HistoryEventTypeFailStateEntered, sfntypes.HistoryEventTypeMapStateEntered,
			sfntypes.HistoryEventTypePassStateEntered, sfntypes.HistoryEventTypeParallelStateEntered:
			transitions++
		case sfntypes.HistoryEventTypeLambdaFunctionScheduled, sfntypes.HistoryEventTypeTaskScheduled:
			lambdaTasks++
		}
	}
	return transitions, lambdaTasks
}

// invocationsSince is every Lambda invocation the local runtime served
// between two readings of its counters, and their billed milliseconds.
func invocationsSince(before, after map[string]map[string]int) (invocations, billedMs int) {
	for fn, n := range after["invocations"] {
		invocations += n - before["invocations"][fn]
	}
	return invocations, billedSince(before, after)
}

// ruleTarget returns the ARN of the Lambda function the rule targets.
func ruleTarget(ctx context.Context, eb *eventbridge.Client, rule string) (string, error) {
	out, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(rule)})
	if err != nil {
		return "", fmt.Errorf("reading the targets of rule %s: %w", rule, err)
	}
	for _, t := range out.Targets {
		if arn := aws.ToString(t.Arn); strings.Contains(arn, ":lambda:") {
			return arn, nil
		}
	}
	return "", fmt.Errorf("rule %s has no Lambda target", rule)
}

// follow polls the execution's history, prints each state as it is
// entered and left, and fills the summary when the execution ends.
func follow(ctx context.Context, c *sfn.Client, rs ReplaySummary, started time.Time, w io.Writer) (ReplaySummary, error) {
	seen := 0
	for {
		hist, err := history(ctx, c, rs.Execution)
		if err != nil {
			return rs, err
		}
		for _, e := range hist[seen:] {
			printEvent(w, e)
		}
		seen = len(hist)
		d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(rs.Execution)})
		if err != nil {
			return rs, err
		}
		if d.Status != sfntypes.ExecutionStatusRunning {
			// One more read: the last events may land with the status.
			if hist, err = history(ctx, c, rs.Execution); err == nil {
				for _, e := range hist[seen:] {
					printEvent(w, e)
				}
			}
			rs.Status = string(d.Status)
			rs.DurationMs = time.Since(started).Milliseconds()
			rs.Transitions, rs.LambdaInvocations = countTransitions(hist)
			rs.Nodes = json.RawMessage("[]")
			var summary struct {
				Status string          `json:"status"`
				Nodes  json.RawMessage `json:"nodes"`
			}
			if d.Output != nil && json.Unmarshal([]byte(*d.Output), &summary) == nil && summary.Nodes != nil {
				rs.Nodes, rs.Outcome = summary.Nodes, summary.Status
			}
			if d.Status == sfntypes.ExecutionStatusFailed {
				fmt.Fprintf(w, "replay: execution failed: %s: %s\n", aws.ToString(d.Error), aws.ToString(d.Cause))
			}
			return rs, nil
		}
		select {
		case <-ctx.Done():
			return rs, fmt.Errorf("execution %s still running when the replay's time ran out", rs.Execution)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func history(ctx context.Context, c *sfn.Client, arn string) ([]sfntypes.HistoryEvent, error) {
	var all []sfntypes.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the history of %s: %w", arn, err)
		}
		all = append(all, page.Events...)
	}
	return all, nil
}

// printEvent writes one line per state entered and per task failure.
func printEvent(w io.Writer, e sfntypes.HistoryEvent) {
	at := aws.ToTime(e.Timestamp).Format("15:04:05.000")
	switch {
	case e.StateEnteredEventDetails != nil:
		fmt.Fprintf(w, "%s  %-22s %s\n", at, aws.ToString(e.StateEnteredEventDetails.Name), strings.TrimSuffix(string(e.Type), "Entered"))
	case e.LambdaFunctionFailedEventDetails != nil:
		fmt.Fprintf(w, "%s  %-22s failed: %s: %s\n", at, "", aws.ToString(e.LambdaFunctionFailedEventDetails.Error), clip(aws.ToString(e.LambdaFunctionFailedEventDetails.Cause)))
	case e.TaskFailedEventDetails != nil:
		fmt.Fprintf(w, "%s  %-22s failed: %s: %s\n", at, "", aws.ToString(e.TaskFailedEventDetails.Error), clip(aws.ToString(e.TaskFailedEventDetails.Cause)))
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
