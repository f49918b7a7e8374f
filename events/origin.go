package events

import "encoding/json"

// Origin is the account and region a function runs in. An event's
// envelope names the account and region it comes from, and a function acts
// only on its own: a rule on another account's bus, or a replay of another
// region's event, must not scale this environment's pools. A fallback
// region's pool is reached by the dispatcher alone, never by an event.
type Origin struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// Admit checks the envelope's account and region against the function's
// own. An envelope that is not JSON is left to the parser of its kind,
// which names what is wrong with it.
func (o Origin) Admit(raw []byte) error {
	var env Origin
	if json.Unmarshal(raw, &env) != nil {
		return nil
	}
	switch {
	case env.Account == "" || env.Region == "":
		return Invalid("event names no account or region (account %q, region %q): this function acts only on events of account %s in %s", env.Account, env.Region, o.Account, o.Region)
	case env.Account != o.Account:
		return Invalid("event from account %s: this function acts only on events of its own account %s", env.Account, o.Account)
	case env.Region != o.Region:
		return Invalid("event from region %s: this function acts only on events of its own region %s", env.Region, o.Region)
	}
	return nil
}
