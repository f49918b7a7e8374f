package lambdarouter

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/uuid"
)

// URLPrefix is where the router serves function URLs: moto records a
// function's URL configuration (CreateFunctionUrlConfig) but serves no
// URL, and its *.lambda-url.*.on.aws names resolve nowhere here. A
// function's URL is <router>/_localcloud/lambda-url/<function name>/, and
// a request there reaches the function as AWS's function URLs deliver it:
// the payload format 2.0 event, SigV4 checked first when the URL's auth
// type is AWS_IAM, the function's answer turned back into HTTP.
const URLPrefix = "/_localcloud/lambda-url/"

// URLConfigReader is the part of the Lambda client the router needs to
// know whether a function has a URL and how it is authenticated.
type URLConfigReader interface {
	GetFunctionUrlConfig(ctx context.Context, in *lambda.GetFunctionUrlConfigInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionUrlConfigOutput, error)
}

// urlFront holds what serving function URLs needs.
type urlFront struct {
	configs URLConfigReader
	creds   aws.Credentials
	region  string
}

// ServeFunctionURLs makes the router answer function URLs, checking
// AWS_IAM requests against the local cloud's one set of credentials.
func (rt *Router) ServeFunctionURLs(c URLConfigReader, creds aws.Credentials, region string) {
	rt.urls = &urlFront{configs: c, creds: creds, region: region}
}

// maxSkew is how far a signed request's time may be from the clock; AWS
// refuses a signature more than 5 minutes off.
const maxSkew = 5 * time.Minute

func (rt *Router) serveURL(w http.ResponseWriter, r *http.Request) {
	urlError := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", http.StatusText(status))
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg})
	}
	if rt.urls == nil {
		urlError(http.StatusNotFound, "function URLs are not served by this router")
		return
	}
	name, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, URLPrefix), "/")
	path = "/" + path
	cfg, err := rt.urls.configs.GetFunctionUrlConfig(r.Context(), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			urlError(http.StatusNotFound, "no function URL for "+name)
			return
		}
		urlError(http.StatusInternalServerError, err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 6*1024*1024+1))
	if err != nil || len(body) > 6*1024*1024 {
		urlError(http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if cfg.AuthType == types.FunctionUrlAuthTypeAwsIam {
		if err := verifySigV4(r, body, rt.urls.creds, rt.urls.region, time.Now()); err != nil {
			rt.log.Info("function URL request refused", "function", name, "reason", err.Error())
			urlError(http.StatusForbidden, "Forbidden")
			return
		}
	}
	fn, err := rt.catalog.Resolve(r.Context(), name)
	if err != nil {
		urlError(http.StatusNotFound, err.Error())
		return
	}
	payload, err := json.Marshal(urlEvent(r, path, body, name))
	if err != nil {
		urlError(http.StatusInternalServerError, err.Error())
		return
	}
	res, err := rt.run(r.Context(), fn, payload)
	if err != nil || res.FunctionError != "" {
		urlError(http.StatusBadGateway, "Internal Server Error")
		return
	}
	writeURLResponse(w, res.Payload)
}

// urlEvent is the request as a function URL hands it to the function
// (payload format 2.0): headers lower-cased, repeated ones and repeated
// query parameters joined by commas, a body that is not UTF-8 in base64.
func urlEvent(r *http.Request, path string, body []byte, name string) lambdaevents.LambdaFunctionURLRequest {
	now := time.Now().UTC()
	ev := lambdaevents.LambdaFunctionURLRequest{Version: "2.0", RawPath: path, RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}, Cookies: nil}
	for k, v := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			ev.Cookies = append(ev.Cookies, strings.Split(strings.Join(v, "; "), "; ")...)
			continue
		}
		ev.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	ev.Headers["host"] = r.Host
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	source, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev.RequestContext = lambdaevents.LambdaFunctionURLRequestContext{AccountID: "anonymous", RequestID: uuid.NewString(),
		APIID: name, DomainName: r.Host, DomainPrefix: name, Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
		HTTP: lambdaevents.LambdaFunctionURLRequestContextHTTPDescription{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: source, UserAgent: r.UserAgent()}}
	return ev
}

// writeURLResponse turns the function's answer into HTTP as function URLs
// do: a response object is used as it is; any other JSON is a 200 whose
// body is that JSON.
func writeURLResponse(w http.ResponseWriter, payload []byte) {
	var res lambdaevents.LambdaFunctionURLResponse
	var probe map[string]json.RawMessage
	if json.Unmarshal(payload, &probe) != nil || probe["statusCode"] == nil || json.Unmarshal(payload, &res) != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload)
		return
	}
	for k, v := range res.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range res.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(res.Body)
	if res.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(res.Body); err == nil {
			body = b
		}
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
}

// verifySigV4 checks a request's Signature Version 4 as the function URL
// service does: the key id, region and service of its credential scope,
// its time, and the signature recomputed over the headers it says it
// signed.
func verifySigV4(r *http.Request, body []byte, creds aws.Credentials, region string, now time.Time) error {
	auth := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(auth, " ")
	if !ok || scheme != "AWS4-HMAC-SHA256" {
		return errors.New("no SigV4 Authorization header")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] != creds.AccessKeyID || scope[2] != region || scope[3] != "lambda" || scope[4] != "aws4_request" {
		return fmt.Errorf("credential scope %q is not this cloud's key for lambda in %s", fields["Credential"], region)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errors.New("no valid X-Amz-Date")
	}
	if d := now.Sub(at); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("signed at %s, %s from now", at.Format(time.RFC3339), d.Round(time.Second))
	}
	// Sign a copy holding only the headers the caller signed; the result
	// must be the caller's signature.
	signed := strings.Split(fields["SignedHeaders"], ";")
	copyReq, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	for _, h := range signed {
		if h != "host" {
			copyReq.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	copyReq.Header.Del("Authorization")
	hash := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, copyReq, hex.EncodeToString(hash[:]), "lambda", region, at); err != nil {
		return err
	}
	_, want, _ := strings.Cut(copyReq.Header.Get("Authorization"), "Signature=")
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return errors.New("the signature does not match")
	}
	return nil
}
