package lambdarouter

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// Fault makes the router answer one kind of AWS request itself instead of
// passing it to moto, so tests can produce the failures moto never does:
// no capacity for an instance type, a deployment command that fails.
type Fault struct {
	// Target matches JSON-protocol calls by their X-Amz-Target header,
	// e.g. "AmazonSSM.GetCommandInvocation".
	Target string `json:"target,omitempty"`
	// Action and Params match query-protocol calls (EC2) by their form
	// fields, e.g. Action "RunInstances" with Params {"InstanceType": "c7gn.xlarge"}.
	Action string            `json:"action,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// Status, ContentType and Body are the answer.
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// faults is the router's list of active faults, first match wins.
type faults struct {
	mu   sync.Mutex
	list []Fault
	hits map[int]int
}

// serveFaults sets (POST, a JSON list), reads (GET) or clears (DELETE) the
// faults.
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
		f.list, f.hits = list, map[int]int{}
	case http.MethodDelete:
		f.list, f.hits = nil, map[int]int{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"faults": f.list, "hits": f.hits})
}

// match returns the fault that answers r, if any. It reads the body of a
// candidate request and puts it back for the proxy.
func (f *faults) match(r *http.Request) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) == 0 {
		return Fault{}, false
	}
	target := r.Header.Get("X-Amz-Target")
	var form url.Values
	for i, fl := range f.list {
		switch {
		case fl.Target != "" && fl.Target == target:
			f.hits[i]++
			return fl, true
		case fl.Action != "":
			if form == nil {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				form, _ = url.ParseQuery(string(body))
			}
			if form.Get("Action") != fl.Action {
				continue
			}
			ok := true
			for k, v := range fl.Params {
				ok = ok && form.Get(k) == v
			}
			if ok {
				f.hits[i]++
				return fl, true
			}
		}
	}
	return Fault{}, false
}

func (fl Fault) write(w http.ResponseWriter) {
	if fl.ContentType != "" {
		w.Header().Set("Content-Type", fl.ContentType)
	}
	w.WriteHeader(fl.Status)
	_, _ = io.WriteString(w, fl.Body)
}
