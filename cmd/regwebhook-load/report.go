package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// measured is one system's figures in one run.
type measured struct {
	name string
	s    *sent
	rd   *round
	want int64    // deliveries expected: accepted envelopes × webhooks per event
	all  bool     // every expected delivery arrived
	cpu  cpuTimes // CPU time used meanwhile, by part
	// redis is what Redis did meanwhile; nil when not measured.
	redis *redisCounts
}

// perEnvelope is n per accepted envelope.
func (m *measured) perEnvelope(n int64) float64 {
	if m.s.accepted == 0 {
		return math.NaN()
	}
	return float64(n) / float64(m.s.accepted)
}

// cpuPerEnvelope is a part's CPU time per accepted envelope, in ms; NaN
// when the part was not measured.
func (m *measured) cpuPerEnvelope(part func(cpuTimes) time.Duration) float64 {
	d := part(m.cpu)
	if d < 0 {
		return math.NaN()
	}
	return m.perEnvelope(int64(d)) / 1e6
}

// The parts of cpuTimes, and their sum (NaN unless every part that the
// store has was measured: the process's, and Redis's on Redis).
func procPart(t cpuTimes) time.Duration  { return t.proc }
func redisPart(t cpuTimes) time.Duration { return t.redis }
func selfPart(t cpuTimes) time.Duration  { return t.self }
func totalPart(t cpuTimes) time.Duration {
	if t.proc < 0 || t.self < 0 {
		return -1
	}
	return t.proc + max(t.redis, 0) + t.self
}

// ingestRate is accepted envelopes per second, from the first send to the
// last answer.
func (m *measured) ingestRate() float64 {
	return rate(m.s.accepted, m.s.last-m.s.first)
}

// deliveryRate is deliveries per second, from the first send to the last
// delivery: what a registry's burst costs until every webhook has it.
func (m *measured) deliveryRate() float64 {
	return rate(int(m.rd.unique.Load()), m.rd.lastDel.Load()-m.s.first)
}

func rate(n int, ns int64) float64 {
	if ns <= 0 {
		return 0
	}
	return float64(n) / (float64(ns) / 1e9)
}

// percentile is the q-quantile of sorted samples (nearest rank).
func percentile(sorted []int64, q float64) (int64, bool) {
	if len(sorted) == 0 {
		return 0, false
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))], true
}

func fmtMs(ns int64) string { return fmt.Sprintf("%.2fms", float64(ns)/1e6) }

// stat is one line of the table: a figure for each system and how to
// compare them.
type stat struct {
	label string
	cells []string
	vals  []float64
	ratio bool
}

// table prints the figures of each system side by side, with the first
// system's over the second's when there are two.
func table(out io.Writer, ms []*measured) {
	lat := make([][]int64, len(ms))
	ans := make([][]int64, len(ms))
	for i, m := range ms {
		lat[i] = slices.Clone(m.rd.lat[:m.rd.nlat.Load()])
		ans[i] = slices.Clone(m.s.answer)
		slices.Sort(lat[i])
		slices.Sort(ans[i])
	}
	var stats []stat
	add := func(label string, ratio bool, f func(i int) (string, float64)) {
		st := stat{label: label, ratio: ratio}
		for i := range ms {
			c, v := f(i)
			st.cells = append(st.cells, c)
			st.vals = append(st.vals, v)
		}
		stats = append(stats, st)
	}
	add("envelopes accepted/s", true, func(i int) (string, float64) {
		m := ms[i]
		return fmt.Sprintf("%.0f  (%d of %d in %s)", m.ingestRate(), m.s.accepted, m.s.envelopes,
			time.Duration(m.s.last-m.s.first).Round(time.Millisecond)), m.ingestRate()
	})
	add("deliveries/s", true, func(i int) (string, float64) {
		m := ms[i]
		got := m.rd.unique.Load()
		note := ""
		if !m.all {
			note = ", NOT ALL ARRIVED"
		}
		return fmt.Sprintf("%.0f  (%d of %d in %s%s)", m.deliveryRate(), got, m.want,
			time.Duration(m.rd.lastDel.Load()-m.s.first).Round(time.Millisecond), note), m.deliveryRate()
	})
	quant := func(label string, samples [][]int64, q float64) {
		add(label, true, func(i int) (string, float64) {
			v, ok := percentile(samples[i], q)
			if !ok {
				return "-", math.NaN()
			}
			return fmt.Sprintf("%s  (n=%d)", fmtMs(v), len(samples[i])), float64(v)
		})
	}
	quant("answer p50", ans, 0.50)
	quant("answer p99", ans, 0.99)
	quant("sent→delivered p50", lat, 0.50)
	quant("sent→delivered p99", lat, 0.99)
	quant("sent→delivered p99.9", lat, 0.999)
	cpu := func(label string, part func(cpuTimes) time.Duration) {
		add(label, true, func(i int) (string, float64) {
			v := ms[i].cpuPerEnvelope(part)
			if math.IsNaN(v) {
				return "-", v
			}
			return fmt.Sprintf("%.3fms", v), v
		})
	}
	cpu("CPU/envelope: process", procPart)
	if ms[0].cpu.redis >= 0 {
		cpu("CPU/envelope: redis", redisPart)
	}
	cpu("CPU/envelope: this command", selfPart)
	cpu("CPU/envelope: total", totalPart)
	count := func(label string, f func(redisCounts) int64) {
		add(label, true, func(i int) (string, float64) {
			if ms[i].redis == nil {
				return "-", math.NaN()
			}
			v := ms[i].perEnvelope(f(*ms[i].redis))
			return fmt.Sprintf("%.2f", v), v
		})
	}
	if ms[0].redis != nil {
		count("redis commands/envelope", func(n redisCounts) int64 { return n.commands })
		count("redis reads/envelope", func(n redisCounts) int64 { return n.reads })
	}
	add("envelopes refused", false, func(i int) (string, float64) { return failures(ms[i].s.failures), 0 })
	add("duplicate deliveries", false, func(i int) (string, float64) {
		return fmt.Sprint(ms[i].rd.dups.Load()), float64(ms[i].rd.dups.Load())
	})
	add("fixed rate: most behind", false, func(i int) (string, float64) {
		return fmtMs(ms[i].s.behind), 0
	})

	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	head := []string{""}
	for _, m := range ms {
		head = append(head, m.name)
	}
	if len(ms) == 2 {
		head = append(head, ms[0].name+"/"+ms[1].name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, st := range stats {
		row := append([]string{st.label}, st.cells...)
		if len(ms) == 2 {
			r := ""
			if st.ratio && st.vals[1] > 0 && !math.IsNaN(st.vals[0]) && !math.IsNaN(st.vals[1]) {
				r = fmt.Sprintf("%.2f", st.vals[0]/st.vals[1])
			}
			row = append(row, r)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func failures(f map[string]int) string {
	if len(f) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", f[k], k))
	}
	return strings.Join(parts, "; ")
}

// medians prints, for several rounds of regwebhook against the floor, each
// round's ratios and their medians: on a machine shared with other work,
// one round's figures vary, the median less.
func medians(out io.Writer, rounds [][]*measured) {
	type ratio struct {
		label string
		of    func(m *measured) float64
	}
	p99 := func(m *measured) float64 {
		l := slices.Clone(m.rd.lat[:m.rd.nlat.Load()])
		slices.Sort(l)
		v, _ := percentile(l, 0.99)
		return float64(v)
	}
	ans99 := func(m *measured) float64 {
		l := slices.Clone(m.s.answer)
		slices.Sort(l)
		v, _ := percentile(l, 0.99)
		return float64(v)
	}
	ans50 := func(m *measured) float64 {
		l := slices.Clone(m.s.answer)
		slices.Sort(l)
		v, _ := percentile(l, 0.50)
		return float64(v)
	}
	ratios := []ratio{
		{"envelopes accepted/s", (*measured).ingestRate},
		{"deliveries/s", (*measured).deliveryRate},
		{"answer p50", ans50},
		{"answer p99", ans99},
		{"sent→delivered p99", p99},
		{"CPU/envelope: total", func(m *measured) float64 { return m.cpuPerEnvelope(totalPart) }},
	}
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "%s/%s over %d rounds\tmedian\teach round\n", rounds[0][0].name, rounds[0][1].name, len(rounds))
	for _, r := range ratios {
		var each []float64
		var cells []string
		for _, rd := range rounds {
			a, b := r.of(rd[0]), r.of(rd[1])
			if !(b > 0) || math.IsNaN(a) {
				continue
			}
			each = append(each, a/b)
			cells = append(cells, fmt.Sprintf("%.2f", a/b))
		}
		if len(each) == 0 {
			continue
		}
		sorted := slices.Clone(each)
		slices.Sort(sorted)
		fmt.Fprintf(tw, "%s\t%.2f\t%s\n", r.label, sorted[len(sorted)/2], strings.Join(cells, " "))
	}
	tw.Flush()
}
