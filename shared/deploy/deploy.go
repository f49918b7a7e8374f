// Package deploy installs and configures the media server on a node through
// SSM Run Command, and reports the command's outcome to the workflow.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/invocation"
	"github.com/mediascale/mediascale/shared/pool"
)

// Actions of the deploy function.
const (
	ActionSend  = "send"
	ActionCheck = "check"
)

// outputTail is how much of a failed command's output a DeployFailed error
// carries: enough to see the failing line, small enough for a state's output.
const outputTail = 1024

// SSM is the part of the SSM client deploy uses.
type SSM interface {
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, opts ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, opts ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// Store is what deploy needs from the node table.
type Store interface {
	GetNode(ctx context.Context, pool, id string) (fleet.Node, error)
	Transition(ctx context.Context, pool, id string, from fleet.State, version int64, to fleet.State, c fleet.Change) (fleet.Node, error)
	Update(ctx context.Context, pool, id string, state fleet.State, version int64, c fleet.Change) (fleet.Node, error)
}

// Request is the deploy function's input.
type Request = events.NodeAction

// Result is the deploy function's answer; the state machine waits and asks
// again until Ready.
type Result struct {
	Ready     bool   `json:"ready"`
	CommandID string `json:"commandId"`
	Status    string `json:"status"`
	// WaitSeconds is how long the workflow waits before checking again.
	WaitSeconds int `json:"waitSeconds"`
}

// pollEvery is how often the workflow asks whether the deployment ended.
const pollEvery = 10 * time.Second

// LogAttrs adds the command's state.
func (r Result) LogAttrs() []any {
	return []any{"command", r.CommandID, "commandStatus", r.Status, "ready", r.Ready}
}

// Handler is the deploy function.
type Handler struct {
	ssm   SSM
	store Store
	pools pool.File
	table string
	now   func() time.Time
	log   *slog.Logger
}

// NewHandler builds the deploy handler. table is the node table, which
// each node's agent writes its heartbeat to.
func NewHandler(c SSM, store Store, pools pool.File, table string, now func() time.Time, log *slog.Logger) *Handler {
	return &Handler{ssm: c, store: store, pools: pools, table: table, now: now, log: log}
}

// Handle is the Lambda entry point.
func (h *Handler) Handle() func(context.Context, json.RawMessage) (Result, error) {
	return invocation.Handler("deploy", h.log, h.now, h.handle)
}

func (h *Handler) handle(ctx context.Context, req Request) (Result, error) {
	res, err := h.act(ctx, req)
	res.WaitSeconds = invocation.WaitSeconds(pollEvery)
	return res, err
}

func (h *Handler) act(ctx context.Context, req Request) (Result, error) {
	p, n, err := fleet.OwnedNode(ctx, h.store, h.pools, req.Task)
	if err != nil {
		return Result{}, err
	}
	if n.State == fleet.Probing || n.State == fleet.Shifting || n.State == fleet.Active {
		// A retried step after the node already moved on.
		return Result{Ready: true, CommandID: n.Command, Status: "Success"}, nil
	}
	if n.State != fleet.Deploying || n.InstanceID == "" {
		return Result{}, events.Conflict(nil, "node %s is %s, not DEPLOYING with an instance", n.ID, n.State)
	}
	switch req.Action {
	case ActionSend:
		return h.send(ctx, p, n)
	case ActionCheck:
		return h.check(ctx, n)
	default:
		return Result{}, events.Invalid("deploy action %q is not send or check", req.Action)
	}
}

// Agent parameters every deploy document takes besides the pool's own: the
// node agent's settings (README.md, "The node agent"). The stack's media
// document installs the agent with them; a pool's own document must
// accept them too.
const (
	ParamNode           = "mediascaleNode"
	ParamPool           = "mediascalePool"
	ParamTable          = "mediascaleTable"
	ParamAgentInterval  = "mediascaleAgentInterval"
	ParamHighResolution = "mediascaleHighResolution"
)

// Command is the SSM request that deploys, or deploys again, a pool's
// media server and node agent on a node's instance with the pool's
// document and parameters.
func Command(p pool.Pool, n fleet.Node, table, comment string) *ssm.SendCommandInput {
	params := make(map[string][]string, len(p.Deploy.Parameters)+5)
	for k, v := range p.Deploy.Parameters {
		params[k] = []string{v}
	}
	params[ParamNode] = []string{n.ID}
	params[ParamPool] = []string{p.Name}
	params[ParamTable] = []string{table}
	params[ParamAgentInterval] = []string{strconv.Itoa(int(p.AgentInterval().Seconds()))}
	params[ParamHighResolution] = []string{strconv.FormatBool(p.HighResolution())}
	return &ssm.SendCommandInput{
		DocumentName:   aws.String(p.Deploy.Document),
		InstanceIds:    []string{n.InstanceID},
		Parameters:     params,
		TimeoutSeconds: aws.Int32(int32(p.Deploy.Timeout.D().Seconds())),
		Comment:        aws.String(comment),
	}
}

// send starts the deployment once; a retried send returns the command
// already recorded for the node.
func (h *Handler) send(ctx context.Context, p pool.Pool, n fleet.Node) (Result, error) {
	if n.Command != "" {
		return Result{CommandID: n.Command, Status: "Sent"}, nil
	}
	out, err := h.ssm.SendCommand(ctx, Command(p, n, h.table, fmt.Sprintf("mediascale deploy %s/%s", n.Pool, n.ID)))
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "InvalidDocument" || api.ErrorCode() == "InvalidParameters" || api.ErrorCode() == "InvalidInstanceId") {
		return Result{}, events.Deploy("node %s: SSM refused the deployment: %s: %s", n.ID, api.ErrorCode(), api.ErrorMessage())
	}
	if err != nil {
		return Result{}, fmt.Errorf("sending deploy command to %s: %w", n.InstanceID, err)
	}
	id := aws.ToString(out.Command.CommandId)
	if _, err := h.store.Update(ctx, n.Pool, n.ID, fleet.Deploying, n.Version, fleet.Change{
		Command: id, Deadline: h.now().Add(p.Deploy.Timeout.D()),
	}); err != nil {
		return Result{}, fmt.Errorf("recording command %s: %w", id, err)
	}
	return Result{CommandID: id, Status: "Sent"}, nil
}

// check reads the command's status on the node.
func (h *Handler) check(ctx context.Context, n fleet.Node) (Result, error) {
	if n.Command == "" {
		return Result{}, events.Conflict(nil, "node %s has no deploy command to check", n.ID)
	}
	out, err := h.ssm.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(n.Command), InstanceId: aws.String(n.InstanceID)})
	var notYet *types.InvocationDoesNotExist
	if errors.As(err, &notYet) {
		// SSM needs a moment after SendCommand before the invocation exists.
		return Result{CommandID: n.Command, Status: "Pending"}, h.overdue(n)
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading command %s on %s: %w", n.Command, n.InstanceID, err)
	}
	res := Result{CommandID: n.Command, Status: string(out.Status)}
	switch out.Status {
	case types.CommandInvocationStatusSuccess:
		if _, err := h.store.Transition(ctx, n.Pool, n.ID, fleet.Deploying, n.Version, fleet.Probing, fleet.Change{}); err != nil {
			return Result{}, err
		}
		res.Ready = true
		return res, nil
	case types.CommandInvocationStatusPending, types.CommandInvocationStatusInProgress, types.CommandInvocationStatusDelayed:
		return res, h.overdue(n)
	default:
		return Result{}, events.Deploy("node %s: deploy command %s ended %s (exit %d): %s", n.ID, n.Command, out.Status,
			out.ResponseCode, tail(aws.ToString(out.StandardErrorContent)+aws.ToString(out.StandardOutputContent)))
	}
}

// overdue fails a deployment that is still running past its timeout; SSM
// should have timed it out itself, so this guards against a lost command.
func (h *Handler) overdue(n fleet.Node) error {
	if !n.Deadline.IsZero() && h.now().After(n.Deadline.Add(time.Minute)) {
		return events.Deploy("node %s: deploy command %s still not finished a minute past its timeout", n.ID, n.Command)
	}
	return nil
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > outputTail {
		s = "..." + s[len(s)-outputTail:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
