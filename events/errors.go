// Package events holds the JSON contracts of mediascale: the AWS events the
// functions accept, the payloads passed between workflow states, and the
// names of the errors that cross from a Lambda into the state machine.
package events

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Error names as they reach Step Functions. aws-lambda-go reports the Go type
// name of a returned error as the Lambda errorType, and a state's ErrorEquals
// matches that string, so each constant equals the name of the type below.
// The CDK app builds every Retry and Catch from these constants.
const (
	ErrInvalidInput         = "InvalidInput"
	ErrStateConflict        = "StateConflict"
	ErrLockHeld             = "LockHeld"
	ErrThrottled            = "Throttled"
	ErrInsufficientCapacity = "InsufficientCapacity"
	ErrProvisionFailed      = "ProvisionFailed"
	ErrDeployFailed         = "DeployFailed"
	ErrProbeFailed          = "ProbeFailed"
	ErrGuardTripped         = "GuardTripped"
	ErrInternal             = "Internal"
)

// Named is an error whose Go type name is one of the names above.
type Named interface {
	error
	// ErrorName returns the name Step Functions sees for this error.
	ErrorName() string
	// rename returns a copy of the error of the same type with another
	// message, so context added by wrapping survives the trip to the state
	// machine.
	rename(msg string) Named
}

// failure carries the message and cause shared by every named error.
type failure struct {
	Msg   string
	Cause error
}

func (f failure) Error() string { return f.Msg }
func (f failure) Unwrap() error { return f.Cause }

// InvalidInput reports an event or request that can never succeed as sent.
type InvalidInput struct{ failure }

// StateConflict reports a conditional write that lost: another execution
// changed the record first.
type StateConflict struct{ failure }

// LockHeld reports that another live execution owns the pool lock.
type LockHeld struct{ failure }

// Throttled reports that AWS asked us to slow down; the state machine retries.
type Throttled struct{ failure }

// InsufficientCapacity reports that no instance type in no zone could be
// launched.
type InsufficientCapacity struct{ failure }

// ProvisionFailed reports an instance that was launched but never became
// usable (it stopped, terminated, or did not start in time).
type ProvisionFailed struct{ failure }

// DeployFailed reports a failed media-server deployment on a node.
type DeployFailed struct{ failure }

// ProbeFailed reports a node that did not pass its health or media probe.
type ProbeFailed struct{ failure }

// GuardTripped reports a guard check that failed between two traffic steps.
type GuardTripped struct{ failure }

// Internal reports any failure that has no more specific name.
type Internal struct{ failure }

func (e *InvalidInput) ErrorName() string         { return ErrInvalidInput }
func (e *StateConflict) ErrorName() string        { return ErrStateConflict }
func (e *LockHeld) ErrorName() string             { return ErrLockHeld }
func (e *Throttled) ErrorName() string            { return ErrThrottled }
func (e *InsufficientCapacity) ErrorName() string { return ErrInsufficientCapacity }
func (e *ProvisionFailed) ErrorName() string      { return ErrProvisionFailed }
func (e *DeployFailed) ErrorName() string         { return ErrDeployFailed }
func (e *ProbeFailed) ErrorName() string          { return ErrProbeFailed }
func (e *GuardTripped) ErrorName() string         { return ErrGuardTripped }
func (e *Internal) ErrorName() string             { return ErrInternal }

func (e *InvalidInput) rename(m string) Named  { return &InvalidInput{failure{m, e.Cause}} }
func (e *StateConflict) rename(m string) Named { return &StateConflict{failure{m, e.Cause}} }
func (e *LockHeld) rename(m string) Named      { return &LockHeld{failure{m, e.Cause}} }
func (e *Throttled) rename(m string) Named     { return &Throttled{failure{m, e.Cause}} }
func (e *InsufficientCapacity) rename(m string) Named {
	return &InsufficientCapacity{failure{m, e.Cause}}
}
func (e *ProvisionFailed) rename(m string) Named { return &ProvisionFailed{failure{m, e.Cause}} }
func (e *DeployFailed) rename(m string) Named    { return &DeployFailed{failure{m, e.Cause}} }
func (e *ProbeFailed) rename(m string) Named     { return &ProbeFailed{failure{m, e.Cause}} }
func (e *GuardTripped) rename(m string) Named    { return &GuardTripped{failure{m, e.Cause}} }
func (e *Internal) rename(m string) Named        { return &Internal{failure{m, e.Cause}} }

// Invalid returns an InvalidInput error with a formatted message.
func Invalid(format string, args ...any) error {
	return &InvalidInput{failure{Msg: fmt.Sprintf(format, args...)}}
}

// Conflict returns a StateConflict error with a formatted message.
func Conflict(cause error, format string, args ...any) error {
	return &StateConflict{failure{Msg: fmt.Sprintf(format, args...), Cause: cause}}
}

// Held returns a LockHeld error with a formatted message.
func Held(format string, args ...any) error {
	return &LockHeld{failure{Msg: fmt.Sprintf(format, args...)}}
}

// CapacityExhausted returns an InsufficientCapacity error.
func CapacityExhausted(cause error, format string, args ...any) error {
	return &InsufficientCapacity{failure{Msg: fmt.Sprintf(format, args...), Cause: cause}}
}

// Provision returns a ProvisionFailed error.
func Provision(format string, args ...any) error {
	return &ProvisionFailed{failure{Msg: fmt.Sprintf(format, args...)}}
}

// Deploy returns a DeployFailed error.
func Deploy(format string, args ...any) error {
	return &DeployFailed{failure{Msg: fmt.Sprintf(format, args...)}}
}

// Probe returns a ProbeFailed error.
func Probe(format string, args ...any) error {
	return &ProbeFailed{failure{Msg: fmt.Sprintf(format, args...)}}
}

// Guard returns a GuardTripped error.
func Guard(format string, args ...any) error {
	return &GuardTripped{failure{Msg: fmt.Sprintf(format, args...)}}
}

// ForStateMachine turns any error a handler is about to return into a named
// error whose type name Step Functions can match. A wrapped named error keeps
// its name and the full wrapped message; an AWS throttling error becomes
// Throttled; anything else becomes Internal. nil stays nil.
func ForStateMachine(err error) error {
	if err == nil {
		return nil
	}
	var named Named
	if errors.As(err, &named) {
		if named.Error() == err.Error() {
			return named
		}
		return named.rename(err.Error())
	}
	// The SDK's own list of throttle codes, the one its retryer backs off
	// on, so a code AWS adds reaches the state machine as Throttled too.
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return &Throttled{failure{Msg: err.Error(), Cause: err}}
	}
	return &Internal{failure{Msg: err.Error(), Cause: err}}
}

// AllErrorNames lists every named error, for the CDK app and for tests.
func AllErrorNames() []string {
	return []string{
		ErrInvalidInput, ErrStateConflict, ErrLockHeld, ErrThrottled,
		ErrInsufficientCapacity, ErrProvisionFailed, ErrDeployFailed, ErrProbeFailed,
		ErrGuardTripped, ErrInternal,
	}
}
