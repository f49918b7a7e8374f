package health

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// rtmpStat is the part of nginx-rtmp's /stat document mediascale reads:
// the server's byte counters and, per application, its streams and client
// count.
type rtmpStat struct {
	BytesIn  int64 `xml:"bytes_in"`
	BytesOut int64 `xml:"bytes_out"`
	BwIn     int64 `xml:"bw_in"`
	BwOut    int64 `xml:"bw_out"`
	Servers  []struct {
		Applications []struct {
			Name string `xml:"name"`
			Live struct {
				Streams []struct {
					Name     string `xml:"name"`
					NClients int    `xml:"nclients"`
				} `xml:"stream"`
				NClients int `xml:"nclients"`
			} `xml:"live"`
		} `xml:"application"`
	} `xml:"server"`
}

// Stat is what a media node's statistics page says about its load.
type Stat struct {
	// Sessions counts publishers and players.
	Sessions int
	// Streams names each application's live streams.
	Streams map[string][]string
	// BytesIn and BytesOut count every media byte since the server
	// started; BitsPerSecond is the server's own recent rate, in and out.
	BytesIn, BytesOut int64
	BitsPerSecond     int64
}

// Session counts are read from the node's statistics page on its health
// port; the control page closes sessions. Both are served only to the
// VPC (and to loopback in local runs).
func statURL(ep Endpoint, path string) string {
	return "http://" + net.JoinHostPort(ep.Host, strconv.Itoa(ep.HealthPort)) + path
}

func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", u, resp.StatusCode)
	}
	return body, nil
}

// ReadStat reads a node's statistics page.
func ReadStat(ctx context.Context, c *http.Client, ep Endpoint) (Stat, error) {
	body, err := get(ctx, c, statURL(ep, "/stat"))
	if err != nil {
		return Stat{}, fmt.Errorf("reading sessions: %w", err)
	}
	return ParseStat(body)
}

// ParseStat reads nginx-rtmp's statistics XML.
func ParseStat(body []byte) (Stat, error) {
	var st rtmpStat
	if err := xml.Unmarshal(body, &st); err != nil {
		return Stat{}, fmt.Errorf("reading sessions: /stat is not nginx-rtmp statistics: %w", err)
	}
	out := Stat{Streams: map[string][]string{}, BytesIn: st.BytesIn, BytesOut: st.BytesOut, BitsPerSecond: st.BwIn + st.BwOut}
	for _, s := range st.Servers {
		for _, a := range s.Applications {
			out.Sessions += a.Live.NClients
			for _, stream := range a.Live.Streams {
				out.Streams[a.Name] = append(out.Streams[a.Name], stream.Name)
			}
		}
	}
	return out, nil
}

// Sessions counts the live sessions (publishers and players) on a node and
// names its streams.
func Sessions(ctx context.Context, c *http.Client, ep Endpoint) (count int, streams map[string][]string, err error) {
	st, err := ReadStat(ctx, c, ep)
	return st.Sessions, st.Streams, err
}

// CloseSessions drops every client of every stream on the node and
// reports how many were dropped: the last step of a drain that ran out of
// time.
func CloseSessions(ctx context.Context, c *http.Client, ep Endpoint) (int, error) {
	_, streams, err := Sessions(ctx, c, ep)
	if err != nil {
		return 0, err
	}
	dropped := 0
	for app, names := range streams {
		for _, name := range names {
			q := url.Values{"app": {app}, "name": {name}}
			body, err := get(ctx, c, statURL(ep, "/control/drop/client?"+q.Encode()))
			if err != nil {
				return dropped, fmt.Errorf("closing stream %s/%s: %w", app, name, err)
			}
			n, _ := strconv.Atoi(strings.TrimSpace(string(body)))
			dropped += n
		}
	}
	return dropped, nil
}

// Sessioner counts and closes a node's sessions through its statistics and
// control pages.
type Sessioner struct{ HTTP *http.Client }

// Count returns the node's live sessions.
func (s Sessioner) Count(ctx context.Context, ep Endpoint) (int, error) {
	n, _, err := Sessions(ctx, s.HTTP, ep)
	return n, err
}

// Close drops the node's remaining sessions and returns how many.
func (s Sessioner) Close(ctx context.Context, ep Endpoint) (int, error) {
	return CloseSessions(ctx, s.HTTP, ep)
}
