package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client asks the entry dispatcher where a new session goes, signing each
// request with SigV4 as the function URL's AWS_IAM auth requires. The
// caller's credentials need the stack's dispatch-clients policy.
type Client struct {
	// URL is the dispatcher's function URL (GetFunctionUrlConfig).
	URL         string
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        *http.Client
	signer      *v4.Signer
}

// NewClient returns a client of the dispatcher at url.
func NewClient(url, region string, creds aws.CredentialsProvider, hc *http.Client) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), Region: region, Credentials: creds, HTTP: hc, signer: v4.NewSigner()}
}

// Rejection is every answer that is not a dispatch: a refusal (503 with
// Retry-After), a bad request, an unknown pool.
type Rejection struct {
	Status     int
	RetryAfter time.Duration
	Problem
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("dispatcher answered %d %s: %s", r.Status, r.Problem.Error, r.Reason)
}

// emptyPayload is the SHA-256 of an empty body, which a GET signs.
var emptyPayload = func() string { h := sha256.Sum256(nil); return hex.EncodeToString(h[:]) }()

// Dispatch asks for a node for one session of class in pool.
func (c *Client) Dispatch(ctx context.Context, pool, class string) (Answer, error) {
	q := url.Values{"pool": {pool}}
	if class != "" {
		q.Set("class", class)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+Route+"?"+q.Encode(), nil)
	if err != nil {
		return Answer{}, fmt.Errorf("dispatch request: %w", err)
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Answer{}, fmt.Errorf("credentials for the dispatcher: %w", err)
	}
	if err := c.signer.SignHTTP(ctx, creds, req, emptyPayload, "lambda", c.Region, time.Now()); err != nil {
		return Answer{}, fmt.Errorf("signing the dispatch request: %w", err)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("asking the dispatcher: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("reading the dispatcher's answer: %w", err)
	}
	if res.StatusCode == http.StatusOK {
		var a Answer
		if err := json.Unmarshal(body, &a); err != nil || a.Node == "" {
			return Answer{}, fmt.Errorf("the dispatcher's answer is not a dispatch: %s", body)
		}
		return a, nil
	}
	rej := &Rejection{Status: res.StatusCode}
	if err := json.Unmarshal(body, &rej.Problem); err != nil || rej.Problem.Error == "" {
		// A 403 from the function URL itself (an unsigned or mis-signed
		// request) has a body of its own.
		rej.Problem = Problem{Error: http.StatusText(res.StatusCode), Reason: strings.TrimSpace(string(body))}
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
		rej.RetryAfter = time.Duration(s) * time.Second
	}
	return Answer{}, rej
}

// IsRefused reports whether err is a refusal by class or an unavailable
// pool: the client should retry after the rejection's RetryAfter.
func IsRefused(err error) bool {
	var r *Rejection
	return errors.As(err, &r) && r.Status == http.StatusServiceUnavailable
}
