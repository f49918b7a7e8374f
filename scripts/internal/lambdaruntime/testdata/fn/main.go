// Command fn is a Lambda function for the runtime's tests: it answers,
// fails with a named error, overruns, crashes or panics on request.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/mediascale/mediascale/events"
)

type request struct {
	Mode string `json:"mode"`
	Ms   int    `json:"ms"`
}

type response struct {
	Mode     string `json:"mode"`
	Env      string `json:"env"`
	Function string `json:"function"`
	HasHome  bool   `json:"hasHome"`
	Deadline int64  `json:"deadlineMs"`
}

func main() {
	if os.Getenv("FAIL_INIT") != "" {
		fmt.Println("init failing on purpose")
		os.Exit(3)
	}
	lambda.Start(func(ctx context.Context, req request) (response, error) {
		fmt.Println("handling", req.Mode)
		switch req.Mode {
		case "named-error":
			return response{}, events.ForStateMachine(fmt.Errorf("checking input: %w", events.Invalid("field x is missing")))
		case "wrapped-error":
			return response{}, fmt.Errorf("checking input: %w", events.Invalid("field x is missing"))
		case "plain-error":
			return response{}, fmt.Errorf("boom")
		case "sleep":
			time.Sleep(time.Duration(req.Ms) * time.Millisecond)
		case "exit":
			os.Exit(7)
		case "panic":
			panic("kaboom")
		}
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		_, home := os.LookupEnv("HOME")
		return response{Mode: req.Mode, Env: os.Getenv("GREETING"), Function: lambdacontext.FunctionName + "|" + lc.InvokedFunctionArn, HasHome: home, Deadline: time.Until(dl).Milliseconds()}, nil
	})
}
