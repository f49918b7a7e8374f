package stack

import (
	"encoding/json"
	"fmt"

	"github.com/mediascale/mediascale/events"
)

// state is one Amazon States Language state, written as a map so the
// definition reads like the JSON it becomes.
type state = map[string]any

// ScaleOutFunctions and ScaleInFunctions are the functions each definition
// calls.
var (
	ScaleOutFunctions = []string{"plan", "provision", "deploy", "probe", "shift", "rollback", "release"}
	ScaleInFunctions  = []string{"plan", "drain", "release"}
	PressureFunctions = []string{"trigger"}
)

// MaxNodesInParallel bounds the Map state: how many nodes of one execution
// move through launch, deploy, probe and shift at once.
const MaxNodesInParallel = 10

// lambdaTransient are the Lambda service's own transient errors; AWS
// recommends retrying them on every Lambda task.
var lambdaTransient = []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}

// retries is the Retry block of every workflow task: throttling and
// Lambda's transient errors back off and try again; an Internal error
// (an unexpected AWS failure) gets two more tries. Named business errors
// (ProbeFailed, GuardTripped, ...) are never retried here: the Catch sends
// the node to rollback.
func retries() []any {
	return []any{
		state{"ErrorEquals": append([]string{events.ErrThrottled}, lambdaTransient...), "IntervalSeconds": 2, "MaxAttempts": 5, "BackoffRate": 2, "JitterStrategy": "FULL"},
		state{"ErrorEquals": []string{events.ErrInternal}, "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2},
	}
}

// persistentRetry is the Retry block of the steps that must finish whatever
// goes wrong: Rollback, Restore and Release. Step Functions uses the first
// retrier whose ErrorEquals matches and never falls through to a later
// one, so a Throttled error would end after that retrier's attempts; these
// steps therefore have one retrier for every error, with as many attempts
// as any error needs (2 s doubling to about 8.5 minutes in all).
func persistentRetry() []any {
	return []any{state{"ErrorEquals": []string{"States.ALL"}, "IntervalSeconds": 2, "MaxAttempts": events.PersistentRetries, "BackoffRate": 2, "JitterStrategy": "FULL"}}
}

// trafficOffRetry is the Retry block of TrafficOff, the first step of a
// rollback: taking a failed node's traffic away. It outlasts every other
// step's retries (2 s doubling, each pause capped at a minute, 15 tries:
// about 11 minutes in all), because until it succeeds new sessions go to a
// node that failed; the self-healing function also takes the traffic of
// any rolled-back or failed node away every minute (README.md,
// "Self-healing").
func trafficOffRetry() []any {
	return []any{state{"ErrorEquals": []string{"States.ALL"}, "IntervalSeconds": 2, "MaxAttempts": 15, "BackoffRate": 2,
		"MaxDelaySeconds": 60, "JitterStrategy": "FULL"}}
}

// task is a Lambda task whose result lands at resultPath.
func task(arn string, params state, resultPath, next string, catchTo string) state {
	s := state{"Type": "Task", "Resource": arn, "ResultPath": resultPath, "Retry": retries(), "Next": next}
	// Without Parameters the task gets the whole state as its input.
	if params != nil {
		s["Parameters"] = params
	}
	if catchTo != "" {
		s["Catch"] = []any{state{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.failure", "Next": catchTo}}
	}
	return s
}

// wait sleeps for the seconds a function asked for.
func wait(secondsPath, next string) state {
	return state{"Type": "Wait", "SecondsPath": secondsPath, "Next": next}
}

// until loops: when the boolean at path is true go to done, else to again.
func until(path, done, again string) state {
	return state{"Type": "Choice", "Choices": []any{is(path, done)}, "Default": again}
}

// is is a Choice rule: the boolean at path is true. With a next state it
// is a whole rule; without, a clause of a compound one.
func is(path string, next ...string) state {
	r := state{"Variable": path, "BooleanEquals": true}
	if len(next) == 1 {
		r["Next"] = next[0]
	}
	return r
}

// both is a Choice rule that holds when both clauses do.
func both(a, b state, next string) state {
	return state{"And": []any{a, b}, "Next": next}
}

// nodeStates is the per-node part of scale-out: launch, deploy, probe,
// shift in guarded steps, and on any failure rollback of that node only. A
// node for the warm pool is parked (stopped, WARM) instead of shifted.
func nodeStates(arn map[string]string) state {
	with := func(extra state) state {
		out := state{"task.$": "$.task"}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	return state{
		"Launch":          task(arn["provision"], with(state{"action": "launch"}), "$.instance", "WaitForInstance", "TrafficOff"),
		"WaitForInstance": wait("$.instance.waitSeconds", "CheckInstance"),
		"CheckInstance":   task(arn["provision"], with(state{"action": "check"}), "$.instance", "InstanceRunning", "TrafficOff"),
		// A started warm node was deployed before it was parked: no
		// second deployment.
		"InstanceRunning": state{"Type": "Choice", "Choices": []any{
			both(is("$.instance.ready"), is("$.instance.deployed"), "Probe"),
			is("$.instance.ready", "Deploy"),
		}, "Default": "WaitForInstance"},
		"Deploy":        task(arn["deploy"], with(state{"action": "send"}), "$.deploy", "WaitForDeploy", "TrafficOff"),
		"WaitForDeploy": wait("$.deploy.waitSeconds", "CheckDeploy"),
		"CheckDeploy":   task(arn["deploy"], with(state{"action": "check"}), "$.deploy", "Deployed", "TrafficOff"),
		"Deployed":      until("$.deploy.ready", "Probe", "WaitForDeploy"),
		"Probe":         task(arn["probe"], with(state{"attempt.$": "$.probe.attempt"}), "$.probe", "Healthy", "TrafficOff"),
		// A node for the warm pool is parked once healthy; every other
		// node takes traffic.
		"Healthy": state{"Type": "Choice", "Choices": []any{
			both(is("$.probe.healthy"), state{"Variable": "$.task.goal", "StringEquals": events.GoalWarm}, "Park"),
			is("$.probe.healthy", "Shift"),
		}, "Default": "WaitToProbe"},
		"WaitToProbe": wait("$.probe.intervalSeconds", "Probe"),
		"Park":        task(arn["provision"], with(state{"action": "park"}), "$.park", "Parked", "TrafficOff"),
		"Parked":      until("$.park.ready", "Warm", "WaitToPark"),
		"WaitToPark":  wait("$.park.waitSeconds", "Park"),
		"Warm":        state{"Type": "Succeed"},
		"Shift":       task(arn["shift"], with(state{"step.$": "$.shift.step"}), "$.shift", "Shifted", "TrafficOff"),
		"Shifted":     until("$.shift.done", "Active", "Bake"),
		"Bake":        wait("$.shift.bakeSeconds", "Shift"),
		"Active":      state{"Type": "Succeed"},
		// Rollback's first act, apart and retried longest: the node's
		// traffic off (its Route53 weight to 0, or its target out of both
		// groups and the canary weight back). Whether or not it
		// succeeded, the rollback goes on: a failed node must not keep
		// running either.
		"TrafficOff": state{
			"Type": "Task", "Resource": arn["rollback"],
			"Parameters": state{"action": events.RollbackTrafficOff, "task.$": "$.task", "failure.$": "$.failure"},
			"ResultPath": "$.trafficOff", "Next": "Rollback", "Retry": trafficOffRetry(),
			"Catch": []any{state{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.trafficOffFailure", "Next": "Rollback"}},
		},
		"Rollback": state{
			"Type": "Task", "Resource": arn["rollback"], "Parameters": state{"task.$": "$.task", "failure.$": "$.failure"},
			"ResultPath": "$.rollback", "Next": "RolledBack",
			// Rollback is idempotent, so any failure of it is retried; one
			// that still fails is left to the reconciler, and the other
			// nodes go on.
			"Retry": persistentRetry(),
			"Catch": []any{state{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.rollbackFailure", "Next": "RollbackFailed"}},
		},
		"RolledBack":     state{"Type": "Succeed"},
		"RollbackFailed": state{"Type": "Succeed", "Comment": "left for the reconciler; the node record says ROLLING_BACK"},
	}
}

// ScaleOutDefinition is the scale-out state machine: plan, a bounded Map
// over the planned nodes, and a release of the pool lock on every path.
// arn maps each of WorkflowFunctions to its ARN (a CDK token in the stack,
// which CloudFormation resolves with Fn::Join).
func ScaleOutDefinition(arn map[string]string) (string, error) {
	return definition(arn, ScaleOutFunctions,
		"mediascale scale-out: plan, then per node launch (or start a warm node), deploy, probe and shift in guarded steps, or park a node for the warm pool; rollback per node; release the pool lock on every path",
		state{"task.$": "$$.Map.Item.Value", "probe": state{"attempt": 0}, "shift": state{"step": 0}},
		"Launch", nodeStates(arn), MaxNodesInParallel)
}

// ScaleInDefinition is the scale-in state machine: plan the victims, drain
// each (traffic off, new sessions refused, live sessions waited for until
// the drain timeout, the rest closed), terminate it; a node whose drain
// fails is put back into service. The pool lock is released on every path.
func ScaleInDefinition(arn map[string]string) (string, error) {
	return definition(arn, ScaleInFunctions,
		"mediascale scale-in: plan the victims, then per node drain and terminate; a failed drain restores the node; release the pool lock on every path",
		state{"task.$": "$$.Map.Item.Value"},
		"DrainStart", drainStates(arn), MaxNodesInParallel)
}

// PressureDefinition is a pool's pressure loop (README.md, "Decisions
// under pressure"): wait the seconds the last round asked for (15), have
// the trigger decide the pool again, and go round while it answers that
// the pool is still overloaded. A round is three state transitions (Wait,
// Decide, Pressed); the trigger ends the loop after
// events.MaxPressureRounds rounds, and its lease keeps one loop per pool.
// A round that fails after its retries fails the execution, whose lease
// then expires: the pool's next alarm or tick starts a new loop.
func PressureDefinition(arn map[string]string) (string, error) {
	if arn["trigger"] == "" {
		return "", fmt.Errorf("definition: no ARN for function trigger")
	}
	round := state{"source": events.PressureSource, "pool.$": "$.pressure.pool", "loop.$": "$$.Execution.Name", "round.$": "$.pressure.round"}
	def := state{
		"Comment": "mediascale pressure loop: decide an overloaded pool again every 15 s until it is within target",
		"StartAt": "Wait",
		"States": state{
			"Wait":    wait("$.pressure.waitSeconds", "Decide"),
			"Decide":  task(arn["trigger"], round, "$", "Pressed", ""),
			"Pressed": until("$.pressure.continue", "Wait", "Calm"),
			"Calm":    state{"Type": "Succeed"},
		},
	}
	b, err := json.MarshalIndent(def, "", "  ")
	return string(b), err
}

// PressureMachineName is the pressure loop's state machine. The trigger
// starts it and the machine invokes the trigger, so the trigger knows it
// by this name rather than by a reference that would make the two depend
// on each other.
func PressureMachineName(env string) string { return "mediascale-" + env + "-pressure" }

// drainStates is the per-node part of scale-in.
func drainStates(arn map[string]string) state {
	act := func(action string) state { return state{"task.$": "$.task", "action": action} }
	return state{
		"DrainStart":      task(arn["drain"], act("start"), "$.drain", "WaitForSessions", "Restore"),
		"WaitForSessions": wait("$.drain.waitSeconds", "CountSessions"),
		"CountSessions":   task(arn["drain"], act("check"), "$.drain", "Drained", "Restore"),
		// A request to grow cancels the drain: the node goes back.
		"Drained": state{"Type": "Choice", "Choices": []any{
			state{"Variable": "$.drain.cancelled", "BooleanEquals": true, "Next": "Restore"},
			state{"Variable": "$.drain.drained", "BooleanEquals": true, "Next": "Terminate"},
		}, "Default": "WaitForSessions"},
		"Terminate": task(arn["drain"], act("finish"), "$.drain", "Gone", "Restore"),
		"Gone":      state{"Type": "Succeed"},
		"Restore": state{
			"Type": "Task", "Resource": arn["drain"], "Parameters": act("restore"), "ResultPath": "$.restore", "Next": "Restored",
			// Reached by a cancel or a failure; either way the node
			// returns to service at full weight.
			"Retry": persistentRetry(),
			"Catch": []any{state{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.restoreFailure", "Next": "RestoreFailed"}},
		},
		"Restored":      state{"Type": "Succeed"},
		"RestoreFailed": state{"Type": "Succeed", "Comment": "left for the reconciler; the node record says DRAINING"},
	}
}

// definition assembles a scaling workflow: Plan, a Map over the planned
// nodes running nodeStates from startAt, and Release on every path.
func definition(arn map[string]string, functions []string, comment string, item state, startAt string, nodes state, parallel int) (string, error) {
	for _, fn := range functions {
		if arn[fn] == "" {
			return "", fmt.Errorf("definition: no ARN for function %s", fn)
		}
	}
	release := func(withFailure bool) state {
		params := state{"pool.$": "$.pool", "direction.$": "$.direction", "execution.$": "$.execution", "requestedAt.$": "$.requestedAt",
			"attempt.$": "$$.State.RetryCount"}
		if withFailure {
			params["failure.$"] = "$.failure"
		} else {
			params["plan.$"] = "$.plan"
		}
		s := task(arn["release"], params, "$.summary", "Outcome", "")
		// Releasing the lock matters more than anything else here: retry
		// whatever goes wrong for longer.
		s["Retry"] = persistentRetry()
		return s
	}
	def := state{
		"Comment": comment,
		"StartAt": "Plan",
		"States": state{
			"Plan": task(arn["plan"], nil, "$.plan", "DryRun", "ReleaseAfterFailure"),
			// A dry run plans and reports; nothing else runs.
			"DryRun": state{"Type": "Choice", "Choices": []any{
				state{"Variable": "$.plan.dryRun", "BooleanEquals": true, "Next": "Release"},
			}, "Default": "Nodes"},
			"Nodes": state{
				"Type": "Map", "ItemsPath": "$.plan.nodes", "MaxConcurrency": parallel,
				"ItemSelector": item,
				"ItemProcessor": state{
					"ProcessorConfig": state{"Mode": "INLINE"},
					"StartAt":         startAt,
					"States":          nodes,
				},
				"ResultPath": nil,
				"Next":       "Release",
				"Catch":      []any{state{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.failure", "Next": "ReleaseAfterFailure"}},
			},
			"Release":             release(false),
			"ReleaseAfterFailure": release(true),
			"Outcome": state{"Type": "Choice", "Choices": []any{
				state{"Variable": "$.summary.status", "StringEquals": "FAILED", "Next": "ScalingFailed"},
			}, "Default": "ScalingDone", "OutputPath": "$.summary"},
			"ScalingDone":   state{"Type": "Succeed"},
			"ScalingFailed": state{"Type": "Fail", "Error": "ScalingFailed", "Cause": "no planned node reached its goal; see the release step's summary"},
		},
	}
	b, err := json.MarshalIndent(def, "", "  ")
	return string(b), err
}
