package lambdarouter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mediascale/mediascale/scripts/internal/lambdaruntime"
)

// Fault makes the router answer matching AWS requests itself instead of
// passing them to moto, so tests can produce the failures moto never does:
// throttling, a 5xx, no capacity for an instance type, a deployment command
// that fails. Every field set must match (README.md, "Faults").
type Fault struct {
	// Service matches the service that signed the call (the SigV4
	// credential scope): "ec2", "ssm", "route53", "dynamodb", "states",
	// "monitoring" (CloudWatch), "elasticloadbalancing", "events".
	Service string `json:"service,omitempty"`
	// Target matches JSON-protocol calls by their X-Amz-Target header,
	// e.g. "AmazonSSM.GetCommandInvocation"; a target without a dot
	// matches the operation alone ("GetCommandInvocation").
	Target string `json:"target,omitempty"`
	// Action and Params match query-protocol calls (EC2, ELBv2) by their
	// form fields, e.g. Action "RunInstances" with Params
	// {"InstanceType": "c7gn.xlarge"}.
	Action string            `json:"action,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// Method and Path match REST calls, which have neither target nor
	// action (Route53: POST .../rrset): Path is a regular expression
	// searched in the URL path.
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	// Caller matches the function that made the call (the local runtime
	// gives each function credentials of its own, as Lambda does); "*"
	// matches every function and nothing else, so the calls a test makes
	// to look at the cloud pass untouched.
	Caller string `json:"caller,omitempty"`
	// Skip lets the first N matching calls through before the fault
	// answers, so a fault can land in the middle of a run.
	Skip int `json:"skip,omitempty"`
	// Times limits the fault to N answers after the skipped calls; 0
	// means every one.
	Times int `json:"times,omitempty"`
	// After and For bound the fault in time from when it was set ("2s",
	// "30s"); empty After is at once, empty For is until cleared.
	After string `json:"after,omitempty"`
	For   string `json:"for,omitempty"`
	// The answer: Status, and either Code (and Message), which the router
	// writes in the error shape of the call's protocol, or ContentType
	// and Body verbatim.
	Status      int    `json:"status"`
	Code        string `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	Body        string `json:"body,omitempty"`
}

// armed is a fault as set, with its parsed parts.
type armed struct {
	Fault
	path       *regexp.Regexp
	from, till time.Time
}

// faults is the router's list of active faults, first match wins.
type faults struct {
	mu   sync.Mutex
	list []armed
	hits map[int]int
	now  func() time.Time
}

func (f *faults) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

// arm checks a fault and fixes its time window from now.
func arm(fl Fault, now time.Time) (armed, error) {
	a := armed{Fault: fl, from: now}
	if fl.Status < 100 || fl.Status > 599 {
		return a, fmt.Errorf("status %d is not an HTTP status", fl.Status)
	}
	if fl.Service == "" && fl.Target == "" && fl.Action == "" && fl.Method == "" && fl.Path == "" && fl.Caller == "" {
		return a, fmt.Errorf("a fault needs something to match: service, target, action, method, path or caller")
	}
	if fl.Skip < 0 || fl.Times < 0 {
		return a, fmt.Errorf("skip and times count calls: %d and %d", fl.Skip, fl.Times)
	}
	if fl.Code != "" && fl.Body != "" {
		return a, fmt.Errorf("give code or body, not both")
	}
	if fl.Path != "" {
		re, err := regexp.Compile(fl.Path)
		if err != nil {
			return a, fmt.Errorf("path: %w", err)
		}
		a.path = re
	}
	if fl.After != "" {
		d, err := time.ParseDuration(fl.After)
		if err != nil {
			return a, fmt.Errorf("after: %w", err)
		}
		a.from = now.Add(d)
	}
	if fl.For != "" {
		d, err := time.ParseDuration(fl.For)
		if err != nil {
			return a, fmt.Errorf("for: %w", err)
		}
		a.till = a.from.Add(d)
	}
	return a, nil
}

// serveFaults sets (POST, a JSON list), reads (GET) or clears (DELETE) the
// faults. A list with a fault that cannot match or answer is refused whole.
func (f *faults) serveFaults(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		var list []Fault
		if err := json.NewDecoder(r.Body).Decode(&list); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := f.clock()
		set := make([]armed, 0, len(list))
		for i, fl := range list {
			a, err := arm(fl, now)
			if err != nil {
				http.Error(w, fmt.Sprintf("fault %d: %v", i, err), http.StatusBadRequest)
				return
			}
			set = append(set, a)
		}
		f.list, f.hits = set, map[int]int{}
	case http.MethodDelete:
		f.list, f.hits = nil, map[int]int{}
	}
	out := make([]Fault, len(f.list))
	for i, a := range f.list {
		out[i] = a.Fault
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"faults": out, "hits": f.hits})
}

// call is what a fault can match a request by.
type call struct {
	service, target, caller string
	form                    url.Values
}

// credentialScope finds the service in a SigV4 Authorization header:
// "... Credential=AKID/20261122/us-east-1/ec2/aws4_request, ...".
var credentialScope = regexp.MustCompile(`Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request`)

func describe(r *http.Request) call {
	c := call{target: r.Header.Get("X-Amz-Target")}
	if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.service = m[1]
	}
	c.caller = strings.TrimPrefix(r.Header.Get("X-Amz-Security-Token"), lambdaruntime.CallerPrefix)
	return c
}

// form reads a query-protocol body once and puts it back for the proxy.
func (c *call) formOf(r *http.Request) url.Values {
	if c.form == nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.form, _ = url.ParseQuery(string(body))
	}
	return c.form
}

func (a *armed) matches(c *call, r *http.Request, now time.Time) bool {
	switch {
	case now.Before(a.from), !a.till.IsZero() && !now.Before(a.till):
		return false
	case a.Service != "" && a.Service != c.service:
		return false
	case a.Caller == "*" && c.caller == "", a.Caller != "" && a.Caller != "*" && a.Caller != c.caller:
		return false
	case a.Method != "" && !strings.EqualFold(a.Method, r.Method):
		return false
	case a.path != nil && !a.path.MatchString(r.URL.Path):
		return false
	case a.Target != "" && a.Target != c.target && !(strings.Contains(c.target, ".") && !strings.Contains(a.Target, ".") && strings.HasSuffix(c.target, "."+a.Target)):
		return false
	}
	if a.Action != "" || len(a.Params) > 0 {
		form := c.formOf(r)
		if a.Action != "" && form.Get("Action") != a.Action {
			return false
		}
		for k, v := range a.Params {
			if form.Get(k) != v {
				return false
			}
		}
	}
	return true
}

// match returns the fault that answers r, if any, with what the call was
// matched by, and counts the hit; a fault used up (Times) or outside its
// window passes the call on.
func (f *faults) match(r *http.Request) (Fault, call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) == 0 {
		return Fault{}, call{}, false
	}
	c := describe(r)
	now := f.clock()
	for i := range f.list {
		a := &f.list[i]
		if a.Times > 0 && f.hits[i] >= a.Skip+a.Times {
			continue
		}
		if a.matches(&c, r, now) {
			f.hits[i]++
			if f.hits[i] <= a.Skip {
				continue
			}
			return a.Fault, c, true
		}
	}
	return Fault{}, call{}, false
}

// write answers the call. A fault with a code is written in the error
// shape of the call's protocol, as the SDK parses it: JSON for calls with
// an X-Amz-Target, EC2's query errors, other query services' and REST-XML
// (Route53) errors.
func (fl Fault) write(w http.ResponseWriter, c call) {
	body, contentType := fl.Body, fl.ContentType
	if fl.Code != "" {
		msg := fl.Message
		if msg == "" {
			msg = "injected by the local cloud"
		}
		code, text := html.EscapeString(fl.Code), html.EscapeString(msg)
		switch {
		case c.target != "":
			contentType = "application/x-amz-json-1.1"
			w.Header().Set("X-Amzn-Errortype", fl.Code)
			b, _ := json.Marshal(map[string]string{"__type": fl.Code, "message": msg})
			body = string(b)
		case c.service == "ec2":
			contentType = "text/xml"
			body = "<Response><Errors><Error><Code>" + code + "</Code><Message>" + text + "</Message></Error></Errors><RequestID>localcloud</RequestID></Response>"
		default:
			contentType = "text/xml"
			body = "<ErrorResponse><Error><Type>Sender</Type><Code>" + code + "</Code><Message>" + text + "</Message></Error><RequestId>localcloud</RequestId></ErrorResponse>"
		}
	}
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(fl.Status)
	_, _ = io.WriteString(w, body)
}
