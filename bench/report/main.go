// Command report turns benchmark output into the tables BENCHMARKS.md
// quotes. It reads files written by public tools and computes nothing
// they did not measure:
//
//	go run ./bench/report hyperfine -floor NAME [-wrapper NAME] ROUND.json...
//	go run ./bench/report gotest BENCH.txt
//
// hyperfine: every file is one hyperfine invocation (--export-json) that
// timed all the commands. For each, the table gives each command's median,
// mean ± σ, min and mean CPU (user+system), and its ratios to the floor
// command: of medians, of mins and of CPU times. Given -wrapper (the
// command that runs the shell feeding stdin, alone), the wrapper's own
// median, min or CPU time is taken off both sides ("net"); the ratio of
// medians is also given without that ("raw").
// With several files, a last table gives each ratio's median over the
// files and its range.
//
// gotest: `go test -bench` output, possibly with -count > 1; for every
// benchmark and metric the median over the counts and the range.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "hyperfine":
		err = hyperfineCmd(os.Args[2:], os.Stdout)
	case "gotest":
		err = gotestCmd(os.Args[2:], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: report hyperfine -floor NAME [-wrapper NAME] FILE.json...\n       report gotest FILE")
	os.Exit(2)
}

// hfResult is the part of hyperfine's --export-json result we use; times
// are seconds.
type hfResult struct {
	Command string  `json:"command"`
	Mean    float64 `json:"mean"`
	Stddev  float64 `json:"stddev"`
	Median  float64 `json:"median"`
	Min     float64 `json:"min"`
	User    float64 `json:"user"`
	System  float64 `json:"system"`
	Times   []float64
}

func hyperfineCmd(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("hyperfine", flag.ExitOnError)
	floor := fs.String("floor", "", "name of the floor command (-n in hyperfine)")
	wrapper := fs.String("wrapper", "", "name of the command that runs the stdin wrapper alone, if any")
	_ = fs.Parse(args)
	if *floor == "" || fs.NArg() == 0 {
		usage()
	}
	kinds := ratioKinds(*wrapper != "")
	all := map[string][][]float64{} // command -> kind -> one ratio per round
	var order []string
	for round, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var doc struct{ Results []hfResult }
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		byName := map[string]hfResult{}
		for _, r := range doc.Results {
			byName[r.Command] = r
		}
		fl, ok := byName[*floor]
		if !ok {
			return fmt.Errorf("%s: no command named %q", path, *floor)
		}
		var wrap hfResult
		if *wrapper != "" {
			if wrap, ok = byName[*wrapper]; !ok {
				return fmt.Errorf("%s: no command named %q", path, *wrapper)
			}
		}
		// Rows in a stable order, by the first round's medians, whatever
		// order each round ran them in.
		if round == 0 {
			for _, r := range doc.Results {
				order = append(order, r.Command)
			}
			slices.SortStableFunc(order, func(a, b string) int {
				return cmpFloat(byName[a].Median, byName[b].Median)
			})
		}
		fmt.Fprintf(w, "\n%s (round %d: hyperfine ran the commands in the order %s)\n\n", path, round+1, strings.Join(names(doc.Results), ", "))
		header(w, "| command | median | mean ± σ | min | CPU (user+sys) |", *floor, kinds)
		for _, name := range order {
			r, ok := byName[name]
			if !ok {
				return fmt.Errorf("%s: no command named %q (the rounds must time the same commands)", path, name)
			}
			row := fmt.Sprintf("| %s | %s | %s ± %s | %s | %s |", name, ms(r.Median), ms(r.Mean), ms(r.Stddev), ms(r.Min), ms(cpu(r)))
			if all[name] == nil {
				all[name] = make([][]float64, len(kinds))
			}
			for k, kind := range kinds {
				v := math.NaN()
				if name != *wrapper || !kind.net {
					v = kind.of(r, fl, wrap)
				}
				all[name][k] = append(all[name][k], v)
				row += " " + ratio(v) + " |"
			}
			fmt.Fprintln(w, row)
		}
	}
	if len(fs.Args()) > 1 {
		fmt.Fprintf(w, "\nOver %d rounds: median of the per-round ratios [lowest, highest]\n\n", len(fs.Args()))
		header(w, "| command |", *floor, kinds)
		for _, name := range order {
			row := "| " + name + " |"
			for k := range kinds {
				row += " " + spread(all[name][k]) + " |"
			}
			fmt.Fprintln(w, row)
		}
	}
	return nil
}

// ratioKind is one way of comparing a command with the floor.
type ratioKind struct {
	title string
	net   bool // the wrapper's share is taken off both sides
	of    func(r, floor, wrapper hfResult) float64
}

// ratioKinds: medians, raw and (with a wrapper) net of it; then mins and
// CPU time (user+system), both net of the wrapper when there is one. Mins
// and CPU time are the least disturbed by other load on the machine.
func ratioKinds(wrapper bool) []ratioKind {
	net := func(get func(hfResult) float64) func(r, f, w hfResult) float64 {
		return func(r, f, w hfResult) float64 {
			if get(f) <= get(w) {
				return math.NaN()
			}
			return (get(r) - get(w)) / (get(f) - get(w))
		}
	}
	median := func(r hfResult) float64 { return r.Median }
	minimum := func(r hfResult) float64 { return r.Min }
	if !wrapper {
		return []ratioKind{
			{"median", false, net(median)},
			{"min", false, net(minimum)},
			{"CPU", false, net(cpu)},
		}
	}
	return []ratioKind{
		{"median, raw", false, func(r, f, _ hfResult) float64 { return r.Median / f.Median }},
		{"median, net of wrapper", true, net(median)},
		{"min, net", true, net(minimum)},
		{"CPU, net", true, net(cpu)},
	}
}

func header(w io.Writer, start, floor string, kinds []ratioKind) {
	line, rule := start, "|---"+strings.Repeat("|---:", strings.Count(start, "|")-2)
	for _, k := range kinds {
		line += fmt.Sprintf(" ratio to %s (%s) |", floor, k.title)
		rule += "|---:"
	}
	fmt.Fprintln(w, line)
	fmt.Fprintln(w, rule+"|")
}

func cpu(r hfResult) float64 { return r.User + r.System }

func names(rs []hfResult) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Command
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ms(s float64) string { return strconv.FormatFloat(s*1e3, 'f', 2, 64) + " ms" }

func ratio(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "x"
}

// spread is "median [min, max]" of xs, NaNs left out.
func spread(xs []float64) string {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return "–"
	}
	slices.Sort(v)
	if len(v) == 1 {
		return ratio(v[0])
	}
	return fmt.Sprintf("%s [%s, %s]", ratio(median(v)), ratio(v[0]), ratio(v[len(v)-1]))
}

// median of sorted xs.
func median(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// benchLine matches one result line of `go test -bench`: the name (with
// its -GOMAXPROCS suffix), the iteration count, then value-unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

func gotestCmd(args []string, w io.Writer) error {
	if len(args) != 1 {
		usage()
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	type series struct {
		units  []string
		values map[string][]float64
		runs   int
	}
	all := map[string]*series{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		s := all[name]
		if s == nil {
			s = &series{values: map[string][]float64{}}
			all[name] = s
			order = append(order, name)
		}
		s.runs++
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			unit := fields[i+1]
			if _, seen := s.values[unit]; !seen {
				s.units = append(s.units, unit)
			}
			s.values[unit] = append(s.values[unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return errors.New(args[0] + ": no benchmark results")
	}
	fmt.Fprintln(w, "| benchmark | runs | metric: median [lowest, highest] |")
	fmt.Fprintln(w, "|---|---:|---|")
	for _, name := range order {
		s := all[name]
		var cells []string
		for _, u := range s.units {
			v := slices.Sorted(slices.Values(s.values[u]))
			cell := fmt.Sprintf("%s %s", num(median(v)), u)
			if len(v) > 1 {
				cell += fmt.Sprintf(" [%s, %s]", num(v[0]), num(v[len(v)-1]))
			}
			cells = append(cells, cell)
		}
		fmt.Fprintf(w, "| %s | %d | %s |\n", strings.TrimPrefix(name, "Benchmark"), s.runs, strings.Join(cells, "; "))
	}
	return nil
}

// num prints v with about four significant digits and no exponent.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
