package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediascale/mediascale/shared/pool"
	"github.com/mediascale/mediascale/shared/simulation"
)

// simulate replays a traffic trace through the pool's policy and its
// peers' (README.md, "Simulating a pool"): a table on stdout, and with
// --out a JSON report, one plot per policy and a bar chart of the figures.
// It needs no AWS.
func simulate(args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ExitOnError)
	pools := fs.String("pools", "", "pool file (infra/config/<env>.yaml)")
	name := fs.String("pool", "", "pool name")
	tracePath := fs.String("trace", "", "trace CSV: seconds,sessions")
	modelPath := fs.String("model", "", "model file overriding the default figures (optional)")
	out := fs.String("out", "", "folder for report.json and the plots (optional)")
	showsPath := fs.String("shows", "", "shows announced for the trace (optional)")
	showScale := fs.Float64("show-scale", 1, "announce each show's peak times this: an estimate that was off (0.5 to 1.5)")
	_ = fs.Parse(args)
	if *pools == "" || *name == "" || *tracePath == "" {
		return fmt.Errorf("usage: msctl simulate --pools FILE --pool NAME --trace FILE [--model FILE] [--shows FILE [--show-scale K]] [--out DIR]")
	}
	if *showScale < 0.1 || *showScale > 10 {
		return fmt.Errorf("--show-scale %g: want 0.1 to 10", *showScale)
	}
	file, err := pool.LoadFile(*pools)
	if err != nil {
		return err
	}
	p, ok := file.Find(*name)
	if !ok {
		return fmt.Errorf("pool %q is not in %s", *name, *pools)
	}
	m := simulation.DefaultModel()
	if *modelPath != "" {
		f, err := os.Open(*modelPath)
		if err != nil {
			return err
		}
		m, err = simulation.LoadModel(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *modelPath, err)
		}
	}
	tf, err := os.Open(*tracePath)
	if err != nil {
		return err
	}
	trace, err := simulation.ParseTrace(tf)
	tf.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *tracePath, err)
	}
	var shows []simulation.Show
	if *showsPath != "" {
		f, err := os.Open(*showsPath)
		if err != nil {
			return err
		}
		shows, err = simulation.ParseShows(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *showsPath, err)
		}
		shows = simulation.Scaled(shows, *showScale)
	}
	started := time.Now()
	report, err := simulation.Compare(p, m, trace, filepath.Base(*tracePath), shows...)
	if err != nil {
		return err
	}
	if err := report.WriteTable(os.Stdout); err != nil {
		return err
	}
	fmt.Printf("simulated %d policies over %s in %s\n", len(report.Results), trace.Duration(), time.Since(started).Round(time.Millisecond))
	cold, warm := m.Leads(p)
	fmt.Printf("model: a node takes its first traffic %s after the decision launched cold (deploy %s), %s started from the warm pool\n",
		cold.Round(100*time.Millisecond), m.Deploy, warm.Round(100*time.Millisecond))
	if *out == "" {
		return nil
	}
	return writeReport(report, *out)
}

func writeReport(r simulation.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), raw, 0o644); err != nil {
		return err
	}
	write := func(name string, draw func(*os.File) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := draw(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	for _, res := range r.Results {
		if err := write("supply-"+strings.ReplaceAll(res.Policy, " ", "-")+".svg", func(f *os.File) error { return r.WritePlot(f, res) }); err != nil {
			return err
		}
	}
	if err := write("figures.svg", func(f *os.File) error { return r.WriteBars(f) }); err != nil {
		return err
	}
	fmt.Printf("wrote %s (report.json, figures.svg, one supply-<policy>.svg per policy)\n", dir)
	return nil
}
