package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/scripts/testkit/fleettest"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/telemetry"
)

const document = `{"schemaVersion":"2.2","description":"test","parameters":{"rtmpPort":{"type":"String"}},
"mainSteps":[{"action":"aws:runShellScript","name":"install","inputs":{"runCommand":["echo {{rtmpPort}}"]}}]}`

func testPools() pool.File {
	return pool.File{Environment: "dev", Pools: []pool.Pool{{
		Name:   "live",
		Deploy: pool.Deploy{Document: "media-rtmp", Parameters: map[string]string{"rtmpPort": "1935"}, Timeout: pool.Duration(5 * time.Minute)},
	}}}
}

// deployingNode creates a node in DEPLOYING on a moto table.
func deployingNode(t *testing.T, store *fleet.Store) events.NodeTask {
	t.Helper()
	ctx := context.Background()
	n, err := store.CreateNode(ctx, fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err = store.Transition(ctx, "live", "n-1", fleet.Pending, n.Version, fleet.Provisioning, fleet.Change{InstanceID: "i-0123456789abcdef0"}); err != nil {
		t.Fatal(err)
	}
	if _, err = store.Transition(ctx, "live", "n-1", fleet.Provisioning, n.Version, fleet.Deploying, fleet.Change{}); err != nil {
		t.Fatal(err)
	}
	return events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"}
}

func call(t *testing.T, h *Handler, action string, task events.NodeTask) (Result, error) {
	t.Helper()
	raw, _ := json.Marshal(Request{Action: action, Task: task})
	return h.Handle()(context.Background(), raw)
}

func TestDeployOnMoto(t *testing.T) {
	ctx := context.Background()
	cfg, store := fleettest.OnMoto(t, "nodes")
	client := ssm.NewFromConfig(cfg)
	h := NewHandler(client, store, testPools(), "nodes", time.Now, telemetry.NewLogger(io.Discard, "deploy"))
	task := deployingNode(t, store)

	// moto accepts SendCommand for a document that does not exist, so the
	// refused-document path is covered with a fake in TestSendRefused.
	if _, err := client.CreateDocument(ctx, &ssm.CreateDocumentInput{
		Name: aws.String("media-rtmp"), Content: aws.String(document), DocumentType: types.DocumentTypeCommand, DocumentFormat: types.DocumentFormatJson,
	}); err != nil {
		t.Fatal(err)
	}
	sent, err := call(t, h, ActionSend, task)
	if err != nil || sent.CommandID == "" {
		t.Fatalf("send = %+v, %v", sent, err)
	}
	again, err := call(t, h, ActionSend, task)
	if err != nil || again.CommandID != sent.CommandID {
		t.Fatalf("a retried send started command %s, want %s (%v)", again.CommandID, sent.CommandID, err)
	}
	cmds, _ := client.ListCommands(ctx, &ssm.ListCommandsInput{})
	if got := cmds.Commands[0].Parameters; got[ParamNode][0] != "n-1" || got[ParamPool][0] != "live" || got[ParamTable][0] != "nodes" ||
		got[ParamAgentInterval][0] != "10" || got[ParamHighResolution][0] != strconv.FormatBool(testPools().Pools[0].HighResolution()) {
		t.Fatalf("the node agent's parameters: %v", got)
	}
	if len(cmds.Commands) != 1 || aws.ToString(cmds.Commands[0].DocumentName) != "media-rtmp" || cmds.Commands[0].Parameters["rtmpPort"][0] != "1935" {
		t.Fatalf("commands sent: %+v", cmds.Commands)
	}
	checked, err := call(t, h, ActionCheck, task)
	if err != nil || !checked.Ready {
		t.Fatalf("check = %+v, %v", checked, err)
	}
	n, _ := store.GetNode(ctx, "live", "n-1")
	if n.State != fleet.Probing || n.Command != sent.CommandID {
		t.Fatalf("node after deploy = %s command %q", n.State, n.Command)
	}
}

// fakeSSM answers GetCommandInvocation with a fixed outcome.
type fakeSSM struct {
	SSM
	out *ssm.GetCommandInvocationOutput
	err error
}

func (f fakeSSM) GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	return f.out, f.err
}

func TestCheckOutcomes(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		fake     fakeSSM
		deadline time.Time
		ready    bool
		errName  string
		errText  string
	}{
		{"a running command keeps the workflow waiting", fakeSSM{out: &ssm.GetCommandInvocationOutput{Status: types.CommandInvocationStatusInProgress}}, now.Add(time.Minute), false, "", ""},
		{"an invocation SSM has not created yet keeps it waiting", fakeSSM{err: &types.InvocationDoesNotExist{}}, now.Add(time.Minute), false, "", ""},
		{"a failed command is DeployFailed with the output's tail", fakeSSM{out: &ssm.GetCommandInvocationOutput{
			Status: types.CommandInvocationStatusFailed, ResponseCode: 1, StandardErrorContent: aws.String("nginx: [emerg] unknown directive \"rtmp\"\n"),
		}}, now.Add(time.Minute), false, events.ErrDeployFailed, `ended Failed (exit 1): nginx: [emerg] unknown directive "rtmp"`},
		{"a timed-out command is DeployFailed", fakeSSM{out: &ssm.GetCommandInvocationOutput{Status: types.CommandInvocationStatusTimedOut, ResponseCode: -1}}, now.Add(time.Minute), false, events.ErrDeployFailed, "ended TimedOut"},
		{"a command still running long past its timeout is DeployFailed", fakeSSM{out: &ssm.GetCommandInvocationOutput{Status: types.CommandInvocationStatusInProgress}}, now.Add(-2 * time.Minute), false, events.ErrDeployFailed, "past its timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Deploying, InstanceID: "i-1", Command: "cmd-1", Deadline: tc.deadline})
			h := NewHandler(tc.fake, store, testPools(), "nodes", func() time.Time { return now }, telemetry.NewLogger(io.Discard, "deploy"))
			res, err := call(t, h, ActionCheck, events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"})
			if tc.errName == "" {
				if err != nil || res.Ready != tc.ready {
					t.Fatalf("res = %+v, err = %v", res, err)
				}
				return
			}
			var named events.Named
			if !errors.As(err, &named) || named.ErrorName() != tc.errName || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.errName, tc.errText)
			}
		})
	}
}

func (f fakeSSM) SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	return nil, f.err
}

func TestSendRefusedIsDeployFailed(t *testing.T) {
	store := fleettest.NewMemory(fleet.Node{Pool: "live", ID: "n-1", Execution: "exec-1", State: fleet.Deploying, InstanceID: "i-1"})
	fake := fakeSSM{err: &types.InvalidDocument{Message: aws.String("document media-rtmp does not exist")}}
	h := NewHandler(fake, store, testPools(), "nodes", time.Now, telemetry.NewLogger(io.Discard, "deploy"))
	_, err := call(t, h, ActionSend, events.NodeTask{Pool: "live", Node: "n-1", Execution: "exec-1"})
	var df *events.DeployFailed
	if !errors.As(err, &df) || !strings.Contains(err.Error(), "InvalidDocument: document media-rtmp does not exist") {
		t.Fatalf("err = %T %v", err, err)
	}
}
