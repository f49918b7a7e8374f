package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/mediascale/mediascale/shared/capacity"
	"github.com/mediascale/mediascale/shared/fleet"
	"github.com/mediascale/mediascale/shared/pool"
)

// showUsage is msctl show's own usage line.
const showUsage = "usage: msctl show add POOL --start RFC3339 --peak SESSIONS [--ramp DURATION] [--id NAME] --reason TEXT | show list [--pool NAME] | show cancel POOL ID"

var showID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,39}$`)

// show announces, lists and cancels shows (README.md, "Announced
// shows"): the controller raises the pool's floor one lead time before an
// announced show's start.
func (c *ctl) show(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(showUsage)
	}
	switch args[0] {
	case "add":
		return c.showAdd(ctx, args[1:])
	case "list":
		return c.showList(ctx, args[1:])
	case "cancel":
		return c.showCancel(ctx, args[1:])
	}
	return errors.New(showUsage)
}

func (c *ctl) showAdd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		return errors.New(showUsage)
	}
	fs := flag.NewFlagSet("show add", flag.ExitOnError)
	start := fs.String("start", "", "when the show starts, RFC 3339 (2026-12-05T20:00:00Z)")
	peak := fs.Int("peak", 0, "the sessions expected at its peak")
	ramp := fs.Duration("ramp", 0, "how long the audience takes to arrive")
	id := fs.String("id", "", "the show's name (default: generated)")
	reason := fs.String("reason", "", "what the show is, for the record")
	_ = fs.Parse(args[1:])
	at, err := time.Parse(time.RFC3339, *start)
	switch {
	case err != nil:
		return fmt.Errorf("--start %q: want RFC 3339, such as 2026-12-05T20:00:00Z", *start)
	case at.Before(time.Now().Add(-time.Hour)):
		return fmt.Errorf("--start %s is in the past", at.UTC().Format(time.RFC3339))
	case *peak < 1 || *peak > pool.MaxShowPeak:
		return fmt.Errorf("--peak %d: want 1 to %d sessions", *peak, pool.MaxShowPeak)
	case *ramp < 0 || *ramp > time.Hour:
		return fmt.Errorf("--ramp %s: want 0 to 1h", *ramp)
	case *reason == "":
		return errors.New("--reason is required: say what the show is")
	}
	if *id == "" {
		*id = "show-" + uuid.NewString()[:8]
	}
	if !showID.MatchString(*id) {
		return fmt.Errorf("--id %q: want 3-40 lowercase letters, digits or dashes", *id)
	}
	pools, store, err := c.poolsAndStore(ctx)
	if err != nil {
		return err
	}
	p, ok := pools.Find(args[0])
	if !ok {
		return fmt.Errorf("pool %q is not configured in %s", args[0], c.env)
	}
	sh, err := store.AnnounceShow(ctx, fleet.Show{Pool: p.Name, ID: *id, Start: at.UTC(), Peak: *peak, RampSeconds: int(ramp.Seconds()), By: operator(), Reason: *reason})
	if err != nil {
		return err
	}
	need := capacity.NodesFor(p, float64(*peak))
	fmt.Printf("announced show %s on %s at %s: %d sessions need %d nodes (max %d); the floor rises one lead time before the start\n",
		sh.ID, p.Name, sh.Start.Format(time.RFC3339), sh.Peak, need, p.Capacity.Max)
	return nil
}

func (c *ctl) showList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("show list", flag.ExitOnError)
	only := fs.String("pool", "", "one pool")
	_ = fs.Parse(args)
	pools, store, err := c.poolsAndStore(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POOL\tSHOW\tSTART\tPEAK\tRAMP\tKIND\tSTATE\tBY")
	now := time.Now().UTC()
	for _, p := range pools.Pools {
		if *only != "" && p.Name != *only {
			continue
		}
		announced, err := store.Shows(ctx, p.Name)
		if err != nil {
			return err
		}
		for _, s := range announced {
			state := "announced"
			if s.Cancelled() {
				state = "cancelled by " + s.CancelledBy
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\tannounced\t%s\t%s\n", p.Name, s.ID, s.Start.Format(time.RFC3339), s.Peak, s.Ramp(), state, s.By)
		}
		for _, r := range p.Shows {
			days := "every day"
			if len(r.Days) > 0 {
				days = fmt.Sprint(r.Days)
			}
			next, _ := r.Next(now)
			fmt.Fprintf(w, "%s\t%s\t%s (next %s)\t%d\t%s\tpool file\t%s\t-\n", p.Name, r.Name, r.Start+" UTC "+days, next.Format(time.RFC3339), r.Peak, r.Ramp.D(), "recurring")
		}
	}
	return w.Flush()
}

func (c *ctl) showCancel(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New(showUsage)
	}
	store, err := c.store(ctx)
	if err != nil {
		return err
	}
	cancelled, err := store.CancelShow(ctx, args[0], args[1], operator())
	if err != nil {
		return err
	}
	if !cancelled {
		fmt.Printf("show %s of %s was cancelled already\n", args[1], args[0])
		return nil
	}
	fmt.Printf("cancelled show %s of %s: its floor is released at the next decision\n", args[1], args[0])
	return nil
}
