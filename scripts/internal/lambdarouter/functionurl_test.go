package lambdarouter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestSigV4IsCheckedAsTheFunctionURLServiceChecksIt(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	sign := func(c aws.Credentials, service, region string, at time.Time, body string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:4566/_localcloud/lambda-url/fn/v1/dispatch?pool=live&class=viewer", strings.NewReader(body))
		r.Header.Set("Accept", "application/json")
		h := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), c, r, hex.EncodeToString(h[:]), service, region, at); err != nil {
			t.Fatal(err)
		}
		// What the transport adds after signing is not signed.
		r.Header.Set("User-Agent", "Go-http-client/1.1")
		r.Header.Set("Accept-Encoding", "gzip")
		return r
	}
	cases := []struct {
		name   string
		req    *http.Request
		body   string
		reason string
	}{
		{"a request signed with the cloud's key passes", sign(creds, "lambda", "us-east-1", now, ""), "", ""},
		{"an unsigned request is refused", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:4566/x", nil)
			return r
		}(), "", "no SigV4"},
		{"another key is refused", sign(aws.Credentials{AccessKeyID: "other", SecretAccessKey: "testing"}, "lambda", "us-east-1", now, ""), "", "credential scope"},
		{"the right key id with the wrong secret is refused", sign(aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "guess"}, "lambda", "us-east-1", now, ""), "", "does not match"},
		{"another service's signature is refused", sign(creds, "execute-api", "us-east-1", now, ""), "", "credential scope"},
		{"another region's signature is refused", sign(creds, "lambda", "eu-west-1", now, ""), "", "credential scope"},
		{"a signature ten minutes old is refused", sign(creds, "lambda", "us-east-1", now.Add(-10*time.Minute), ""), "", "from now"},
		{"a changed query is refused", func() *http.Request {
			r := sign(creds, "lambda", "us-east-1", now, "")
			r.URL.RawQuery = "pool=live&class=publisher"
			return r
		}(), "", "does not match"},
		{"a changed body is refused", sign(creds, "lambda", "us-east-1", now, "a"), "b", "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verifySigV4(tc.req, []byte(tc.body), creds, "us-east-1", now)
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.reason)
			}
		})
	}
}
