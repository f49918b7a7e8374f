// Command tracegen writes the traffic traces the simulator ships with
// (testevents/traces/, README.md "Simulating a pool"), deterministically:
// the same seed writes the same files. Each shape follows a public
// account of live audiences:
//
//   - flash-crowd: a show starts; the pool goes from idle to 50 times its
//     load in two minutes. Hotstar reported audiences growing by 500,000
//     concurrent viewers a minute at the start of a match (AWS re:Invent
//     and Hotstar engineering talks, 2018-2019).
//   - collapse: after the peak moment the audience halves within five
//     minutes, as Hotstar saw millions leave after a key wicket (2019).
//   - diurnal-14d: fourteen days with an evening peak around 20:30 and
//     weekends 40 % busier, the daily shape of consumer video traffic
//     (Sandvine's Global Internet Phenomena reports), with noise.
//   - sawtooth: load climbing and falling across the scale-out threshold
//     every ten minutes, the pattern that tempts an autoscaler to flap.
//   - noise: a steady audience with 20 % random noise every 10 s.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("out", "testevents/traces", "folder to write the traces into")
	step := flag.Int("step", 10, "seconds between points (the 14-day trace uses 60 unless -diurnal-step)")
	diurnalStep := flag.Int("diurnal-step", 60, "seconds between points of the 14-day trace")
	seed := flag.Uint64("seed", 7, "random seed")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	rng := rand.New(rand.NewPCG(*seed, 1))
	shapes := []struct {
		name   string
		length int
		step   int
		at     func(s float64) float64
	}{
		{"flash-crowd", 3 * 3600, *step, func(s float64) float64 {
			return ramp(s, 600, 720, 300, 15000) - ramp(s, 2*3600+1800, 2*3600+2400, 0, 12000)
		}},
		{"collapse", 2 * 3600, *step, func(s float64) float64 {
			return ramp(s, 300, 420, 400, 16000) - ramp(s, 3600, 3900, 0, 8000) - ramp(s, 3900, 6000, 0, 5000)
		}},
		{"diurnal-14d", 14 * 86400, *diurnalStep, func(s float64) float64 {
			hour := math.Mod(s, 86400) / 3600
			day := int(s/86400) % 7 // the trace starts on a Monday
			peak := 6000.0
			if day >= 5 {
				peak *= 1.4
			}
			v := 800 + 1200*math.Exp(-sq(hour-13)/18) + peak*math.Exp(-sq(hour-20.5)/3)
			return v * (1 + 0.05*rng.NormFloat64())
		}},
		{"sawtooth", 2 * 3600, *step, func(s float64) float64 {
			phase := math.Mod(s, 1200) / 1200
			return 3000 + 3000*math.Abs(2*phase-1)
		}},
		{"noise", 2 * 3600, *step, func(s float64) float64 {
			return 5000 * (1 + 0.2*rng.NormFloat64())
		}},
	}
	for _, sh := range shapes {
		path := filepath.Join(*dir, sh.name+".csv")
		f, err := os.Create(path)
		if err != nil {
			fail(err)
		}
		w := bufio.NewWriter(f)
		fmt.Fprintln(w, "seconds,sessions")
		for s := 0; s <= sh.length; s += sh.step {
			fmt.Fprintf(w, "%d,%.0f\n", s, math.Max(sh.at(float64(s)), 0))
		}
		if err := w.Flush(); err != nil {
			fail(err)
		}
		if err := f.Close(); err != nil {
			fail(err)
		}
		fmt.Println("wrote", path)
	}
}

// ramp is from until a, then a straight line to to at b, then to.
func ramp(s, a, b, from, to float64) float64 {
	switch {
	case s <= a:
		return from
	case s >= b:
		return to
	}
	return from + (to-from)*(s-a)/(b-a)
}

func sq(x float64) float64 { return x * x }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tracegen:", err)
	os.Exit(1)
}
