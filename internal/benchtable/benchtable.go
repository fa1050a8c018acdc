// Package benchtable collects the rows `make bench` prints as one table: each
// target of the performance issue with the ratio measured side by side in one
// run, its spread over the run's samples, the target and whether it is met.
//
// Benchmarks live in several packages (and go test runs them in separate
// processes), so each row is appended as one tab-separated line to the file
// named by $DEVMTLS_BENCH_TABLE; the Makefile prints that file at the end.
// Without the variable a row is only logged.
package benchtable

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// EnvFile names the file rows are appended to.
const EnvFile = "DEVMTLS_BENCH_TABLE"

// Target bounds a ratio. The zero Target is "report only": no bound.
type Target struct {
	// Bound is the limit; 0 means no target.
	Bound float64
	// AtMost makes Bound an upper limit (memory); otherwise a lower one.
	AtMost bool
}

// AtLeast is a target the ratio must reach or pass.
func AtLeast(x float64) Target { return Target{Bound: x} }

// AtMost is a target the ratio must not exceed.
func AtMost(x float64) Target { return Target{Bound: x, AtMost: true} }

// String is the target as the issue writes it.
func (t Target) String() string {
	switch {
	case t.Bound == 0:
		return "-"
	case t.AtMost:
		return fmt.Sprintf("<= %gx", t.Bound)
	default:
		return fmt.Sprintf(">= %gx", t.Bound)
	}
}

// Met judges the median, the figure a reader compares with the target.
func (t Target) Met(median float64) string {
	switch {
	case t.Bound == 0:
		return "report"
	case t.AtMost && median <= t.Bound, !t.AtMost && median >= t.Bound:
		return "met"
	default:
		return "NOT MET"
	}
}

// Spread is min, median and max of samples.
type Spread struct{ Min, Median, Max float64 }

// SpreadOf sorts a copy of samples; it panics on none, a benchmark bug.
func SpreadOf(samples []float64) Spread {
	s := slices.Clone(samples)
	slices.Sort(s)
	return Spread{s[0], s[len(s)/2], s[len(s)-1]}
}

// String prints the spread as min/median/max with two decimals.
func (s Spread) String() string { return fmt.Sprintf("%.2f/%.2f/%.2f", s.Min, s.Median, s.Max) }

// Ratio reports one row: measure against peer, the per-sample ratios
// (above 1 means devmtls is better, except for AtMost targets where it is
// devmtls's share), the target, and a note with absolute figures.
func Ratio(tb testing.TB, measure, peer string, ratios []float64, t Target, note string) {
	tb.Helper()
	if len(ratios) == 0 {
		tb.Fatalf("%s vs %s: no samples", measure, peer)
	}
	s := SpreadOf(ratios)
	row(tb, measure, peer, s.String()+"x", t.String(), t.Met(s.Median), note)
}

// Value reports a row without a peer (a count or a size), already judged.
func Value(tb testing.TB, measure, value, target, verdict, note string) {
	tb.Helper()
	row(tb, measure, "-", value, target, verdict, note)
}

func row(tb testing.TB, cells ...string) {
	tb.Helper()
	for i, c := range cells {
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	line := strings.Join(cells, "\t")
	tb.Log("bench row: " + line)
	path := os.Getenv(EnvFile)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatalf("%s: %v", EnvFile, err)
	}
	defer f.Close()
	// One write of one line: appends from parallel test processes do not interleave.
	if _, err := f.WriteString(line + "\n"); err != nil {
		tb.Fatalf("%s: %v", EnvFile, err)
	}
}
