package lambdarouter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediascale/mediascale/scripts/internal/lambdaruntime"
)

func TestFunctionName(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a plain name stays", "mediascale-dev-trigger", "mediascale-dev-trigger"},
		{"a full ARN gives its name", "arn:aws:lambda:us-east-1:123456789012:function:mediascale-dev-plan", "mediascale-dev-plan"},
		{"a qualified ARN drops the qualifier", "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST", "fn"},
		{"a partial ARN gives its name", "123456789012:function:fn", "fn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FunctionName(tc.in); got != tc.want {
				t.Fatalf("FunctionName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAssetDirFollowsTheTemplate(t *testing.T) {
	dir := t.TempDir()
	tmpl := `{"Resources":{
		"Fn1":{"Type":"AWS::Lambda::Function","Properties":{"FunctionName":"mediascale-dev-trigger"},"Metadata":{"aws:asset:path":"asset.abc"}},
		"Fn2":{"Type":"AWS::Lambda::Function","Properties":{"FunctionName":"bare"}}}}`
	if err := os.WriteFile(filepath.Join(dir, "mediascale-dev.template.json"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := AssetDir(dir, "mediascale-dev-trigger"); err != nil || got != filepath.Join(dir, "asset.abc") {
		t.Fatalf("AssetDir = %q, %v", got, err)
	}
	if _, err := AssetDir(dir, "bare"); err == nil || !strings.Contains(err.Error(), "no aws:asset:path") {
		t.Fatalf("a function without asset metadata: %v", err)
	}
	if _, err := AssetDir(dir, "other"); err == nil || !strings.Contains(err.Error(), "no template") {
		t.Fatalf("an unknown function: %v", err)
	}
}

// fakeCatalog knows one function, a shell script that answers at once.
type fakeCatalog struct{ fn lambdaruntime.Function }

func (c fakeCatalog) Resolve(_ context.Context, name string) (lambdaruntime.Function, error) {
	if FunctionName(name) != c.fn.Name {
		return lambdaruntime.Function{}, ErrUnknownFunction{Name: name}
	}
	return c.fn, nil
}

func TestRouterAnswersTheInvokeAPILikeLambda(t *testing.T) {
	moto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "moto:"+r.Method+" "+r.URL.Path+" host="+r.Host)
	}))
	defer moto.Close()
	motoURL, _ := url.Parse(moto.URL)
	rt := lambdaruntime.New(nil, io.Discard)
	defer rt.Close()
	r := New(motoURL, fakeCatalog{lambdaruntime.Function{Name: "known", Dir: t.TempDir()}}, rt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cases := []struct {
		name      string
		method    string
		path      string
		body      string
		header    map[string]string
		status    int
		errorType string
		contains  string
	}{
		{"other AWS calls go to moto with their host", "GET", "/2015-03-31/functions", "", nil, 200, "", "moto:GET /2015-03-31/functions host=example.test"},
		{"a payload that is not JSON is refused before any function runs", "POST", "/2015-03-31/functions/known/invocations", "{nope", nil, 400, "InvalidRequestContentException", "Could not parse request body"},
		{"an unknown function is ResourceNotFound", "POST", "/2015-03-31/functions/ghost/invocations", "{}", nil, 404, "ResourceNotFoundException", "Function not found: ghost"},
		{"a dry run answers 204 without running", "POST", "/2015-03-31/functions/known/invocations", "{}", map[string]string{"X-Amz-Invocation-Type": "DryRun"}, 204, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://example.test"+tc.path, strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tc.status || rec.Header().Get("X-Amzn-Errortype") != tc.errorType || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Fatalf("status=%d errorType=%q body=%s", rec.Code, rec.Header().Get("X-Amzn-Errortype"), rec.Body)
			}
		})
	}
}

func TestFaultsAnswerMatchingCallsAndPassTheRest(t *testing.T) {
	var proxied []string
	moto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		proxied = append(proxied, string(body))
		_, _ = io.WriteString(w, "moto")
	}))
	defer moto.Close()
	motoURL, _ := url.Parse(moto.URL)
	rt := lambdaruntime.New(nil, io.Discard)
	defer rt.Close()
	r := New(motoURL, fakeCatalog{}, rt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	set := httptest.NewRequest("POST", "/_localcloud/faults", strings.NewReader(`[
		{"target":"AmazonSSM.GetCommandInvocation","status":200,"body":"{\"Status\":\"Failed\"}"},
		{"action":"RunInstances","params":{"InstanceType":"c7gn.xlarge"},"status":500,"body":"<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code></Error></Errors></Response>"}]`))
	r.ServeHTTP(httptest.NewRecorder(), set)
	cases := []struct {
		name   string
		target string
		body   string
		status int
		answer string
	}{
		{"a JSON call with the fault's target gets the fault", "AmazonSSM.GetCommandInvocation", "{}", 200, `"Status":"Failed"`},
		{"an EC2 call with the fault's parameters gets the fault", "", "Action=RunInstances&InstanceType=c7gn.xlarge&MinCount=1", 500, "InsufficientInstanceCapacity"},
		{"an EC2 call with other parameters goes to moto with its body", "", "Action=RunInstances&InstanceType=c7g.xlarge&MinCount=1", 200, "moto"},
		{"another JSON call goes to moto", "AmazonSSM.SendCommand", "{}", 200, "moto"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "http://localhost/", strings.NewReader(tc.body))
			if tc.target != "" {
				req.Header.Set("X-Amz-Target", tc.target)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.answer) {
				t.Fatalf("status %d body %s", rec.Code, rec.Body)
			}
		})
	}
	if len(proxied) != 2 || proxied[0] != "Action=RunInstances&InstanceType=c7g.xlarge&MinCount=1" {
		t.Fatalf("moto received %q", proxied)
	}
	clear := httptest.NewRequest("DELETE", "/_localcloud/faults", nil)
	r.ServeHTTP(httptest.NewRecorder(), clear)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "http://localhost/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetCommandInvocation")
	r.ServeHTTP(rec, req)
	if rec.Body.String() != "moto" {
		t.Fatalf("a cleared fault still answered: %s", rec.Body)
	}
}

// signed is an AWS request as the SDK sends it: signed for a service, with
// the calling function's session token.
func signed(method, target, service, caller, path, body string) *http.Request {
	req := httptest.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261122/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=x")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if caller != "" {
		req.Header.Set("X-Amz-Security-Token", lambdaruntime.CallerPrefix+caller)
	}
	return req
}

func TestAFaultMatchesByServicePathCallerCountAndTime(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	route53Change := func() *http.Request {
		return signed("POST", "", "route53", "shift", "/2013-04-01/hostedzone/Z1/rrset/", "<ChangeResourceRecordSetsRequest/>")
	}
	cases := []struct {
		name  string
		fault Fault
		calls []*http.Request
		at    []time.Duration // when each call is made, from when the fault was set
		hit   []bool
		body  string // what an answered call's body contains
	}{
		{"a Route53 change is matched by method and path, its list is not",
			Fault{Service: "route53", Method: "POST", Path: `/rrset/?$`, Status: 400, Code: "Throttling"},
			[]*http.Request{route53Change(), signed("GET", "", "route53", "shift", "/2013-04-01/hostedzone/Z1/rrset", "")},
			[]time.Duration{0, 0}, []bool{true, false}, "<Code>Throttling</Code>"},
		{"a fault limited to one occurrence answers once",
			Fault{Service: "ec2", Action: "TerminateInstances", Times: 1, Status: 503, Code: "Unavailable"},
			[]*http.Request{signed("POST", "", "ec2", "rollback", "/", "Action=TerminateInstances"), signed("POST", "", "ec2", "rollback", "/", "Action=TerminateInstances")},
			[]time.Duration{0, 0}, []bool{true, false}, "<Errors><Error><Code>Unavailable</Code>"},
		{"a fault on one caller leaves the others' calls alone",
			Fault{Service: "dynamodb", Target: "UpdateItem", Caller: "release", Status: 400, Code: "ProvisionedThroughputExceededException"},
			[]*http.Request{signed("POST", "DynamoDB_20120810.UpdateItem", "dynamodb", "plan", "/", "{}"), signed("POST", "DynamoDB_20120810.UpdateItem", "dynamodb", "release", "/", "{}")},
			[]time.Duration{0, 0}, []bool{false, true}, `"__type":"ProvisionedThroughputExceededException"`},
		{"a fault in a time window answers only inside it",
			Fault{Service: "states", After: "2s", For: "3s", Status: 500, Code: "ServiceUnavailable"},
			[]*http.Request{signed("POST", "AWSStepFunctions.StartExecution", "states", "trigger", "/", "{}"), signed("POST", "AWSStepFunctions.StartExecution", "states", "trigger", "/", "{}"), signed("POST", "AWSStepFunctions.StartExecution", "states", "trigger", "/", "{}")},
			[]time.Duration{time.Second, 3 * time.Second, 5 * time.Second}, []bool{false, true, false}, "ServiceUnavailable"},
		{"a fault that skips calls lets the first through and answers the next",
			Fault{Service: "ec2", Action: "RunInstances", Skip: 1, Times: 1, Status: 400, Code: "RequestLimitExceeded"},
			[]*http.Request{signed("POST", "", "ec2", "provision", "/", "Action=RunInstances"), signed("POST", "", "ec2", "provision", "/", "Action=RunInstances"), signed("POST", "", "ec2", "provision", "/", "Action=RunInstances")},
			[]time.Duration{0, 0, 0}, []bool{false, true, false}, "<Code>RequestLimitExceeded</Code>"},
		{"a fault on every caller answers the functions and passes the test's own calls",
			Fault{Service: "dynamodb", Caller: "*", Status: 500, Code: "InternalServerError"},
			[]*http.Request{signed("POST", "DynamoDB_20120810.Query", "dynamodb", "", "/", "{}"), signed("POST", "DynamoDB_20120810.Query", "dynamodb", "trigger", "/", "{}")},
			[]time.Duration{0, 0}, []bool{false, true}, "InternalServerError"},
		{"another service's call is never matched",
			Fault{Service: "monitoring", Status: 500, Code: "InternalFailure"},
			[]*http.Request{signed("POST", "", "ec2", "provision", "/", "Action=DescribeInstances"), signed("POST", "", "monitoring", "shift", "/", "Action=GetMetricData")},
			[]time.Duration{0, 0}, []bool{false, true}, "<ErrorResponse><Error><Type>Sender</Type><Code>InternalFailure</Code>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			f := &faults{now: func() time.Time { return now }}
			raw, _ := json.Marshal([]Fault{tc.fault})
			rec := httptest.NewRecorder()
			f.serveFaults(rec, httptest.NewRequest("POST", "/_localcloud/faults", bytes.NewReader(raw)))
			if rec.Code != 200 {
				t.Fatalf("setting the fault: %d %s", rec.Code, rec.Body)
			}
			for i, req := range tc.calls {
				now = t0.Add(tc.at[i])
				fl, c, hit := f.match(req)
				if hit != tc.hit[i] {
					t.Fatalf("call %d: hit %v, want %v", i, hit, tc.hit[i])
				}
				if !hit {
					continue
				}
				out := httptest.NewRecorder()
				fl.write(out, c)
				if out.Code != tc.fault.Status || !strings.Contains(out.Body.String(), tc.body) {
					t.Fatalf("call %d answered %d %s, want %d with %s", i, out.Code, out.Body, tc.fault.Status, tc.body)
				}
			}
		})
	}
}

func TestAFaultThatCannotMatchOrAnswerIsRefused(t *testing.T) {
	for _, doc := range []string{
		`[{"status":500,"code":"InternalFailure"}]`,
		`[{"service":"ec2","status":0}]`,
		`[{"service":"ec2","status":500,"path":"("}]`,
		`[{"service":"ec2","status":500,"after":"soon"}]`,
		`[{"service":"ec2","status":500,"code":"X","body":"Y"}]`,
		`[{"service":"ec2","status":500,"skip":-1}]`,
	} {
		rec := httptest.NewRecorder()
		(&faults{}).serveFaults(rec, httptest.NewRequest("POST", "/_localcloud/faults", strings.NewReader(doc)))
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", doc, rec.Code)
		}
	}
}
