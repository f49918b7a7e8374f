package lambdarouter

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
