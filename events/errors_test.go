package events

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/smithy-go"
)

// lambdaErrorType computes the errorType exactly as aws-lambda-go does for
// a returned error: the name of the type, or of the type pointed to.
func lambdaErrorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

func TestEveryNamedErrorReachesTheStateMachineByItsName(t *testing.T) {
	named := []Named{
		&InvalidInput{}, &StateConflict{}, &LockHeld{}, &Throttled{},
		&InsufficientCapacity{}, &ProvisionFailed{}, &DeployFailed{}, &ProbeFailed{},
		&GuardTripped{}, &Internal{},
	}
	if len(named) != len(AllErrorNames()) {
		t.Fatalf("%d error types but %d names", len(named), len(AllErrorNames()))
	}
	for i, e := range named {
		if got := lambdaErrorType(e); got != e.ErrorName() || got != AllErrorNames()[i] {
			t.Errorf("type %T reaches Step Functions as %q, but its constant is %q", e, got, e.ErrorName())
		}
	}
}

func TestForStateMachine(t *testing.T) {
	throttle := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	cases := []struct {
		name     string
		err      error
		wantType string
		wantMsg  string
	}{
		{"a named error keeps its name", Invalid("bad field"), ErrInvalidInput, "bad field"},
		{"a wrapped named error keeps its name and the context", fmt.Errorf("launching node: %w", CapacityExhausted(nil, "no c7g.large in any zone")), ErrInsufficientCapacity, "launching node: no c7g.large in any zone"},
		{"an AWS throttling error becomes Throttled", fmt.Errorf("starting execution: %w", throttle), ErrThrottled, "starting execution: api error ThrottlingException: Rate exceeded"},
		{"EC2's RequestLimitExceeded, on the SDK's throttle list, becomes Throttled", fmt.Errorf("launching: %w", &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}), ErrThrottled, "launching: api error RequestLimitExceeded: Request limit exceeded."},
		{"DynamoDB's TransactionInProgressException, on the SDK's throttle list, becomes Throttled", &smithy.GenericAPIError{Code: "TransactionInProgressException", Message: "busy"}, ErrThrottled, "api error TransactionInProgressException: busy"},
		{"another AWS error becomes Internal", fmt.Errorf("reading: %w", &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}), ErrInternal, "reading: api error AccessDenied: no"},
		{"a plain error becomes Internal", errors.New("boom"), ErrInternal, "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ForStateMachine(tc.err)
			if lambdaErrorType(got) != tc.wantType {
				t.Fatalf("errorType = %s, want %s", lambdaErrorType(got), tc.wantType)
			}
			if got.Error() != tc.wantMsg {
				t.Fatalf("message = %q, want %q", got.Error(), tc.wantMsg)
			}
			if !errors.Is(got, tc.err) && errors.Unwrap(got) == nil && tc.wantType == ErrInternal {
				t.Fatal("the original error is lost")
			}
		})
	}
	if ForStateMachine(nil) != nil {
		t.Fatal("nil became an error")
	}
}
