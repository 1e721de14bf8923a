package logging

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naiveSpans is the reference: every occurrence of every pattern, merged
// where they overlap or touch.
func naiveSpans(s string, patterns map[string]int) [][2]int {
	var spans [][2]int
	for p, n := range patterns {
		if n == 0 {
			continue
		}
		for i := 0; i+len(p) <= len(s); i++ {
			if strings.HasPrefix(s[i:], p) {
				spans = append(spans, [2]int{i, i + len(p)})
			}
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var out [][2]int
	for _, sp := range spans {
		if n := len(out); n > 0 && sp[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], sp[1])
			continue
		}
		out = append(out, sp)
	}
	return out
}

// TestAutomatonMatchesTheNaiveScan adds and removes random patterns over a
// small alphabet (so they overlap, nest and share prefixes and suffixes)
// and compares every scan with the naive one.
func TestAutomatonMatchesTheNaiveScan(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc"[rng.IntN(3)]
		}
		return string(b)
	}
	a := newAutomaton()
	live := map[string]int{}
	var added []string
	for round := range 3000 {
		if len(added) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(added))
			p := added[i]
			added = slices.Delete(added, i, i+1)
			a.remove(p)
			live[p]--
		} else {
			p := word(1 + rng.IntN(6))
			added = append(added, p)
			a.add(p)
			live[p]++
		}
		text := word(rng.IntN(40))
		got := a.spans(text, nil)
		want := naiveSpans(text, live)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: text %q, patterns %v: spans %v, want %v", round, text, live, got, want)
		}
		if a.contains(text) != (len(want) > 0) {
			t.Fatalf("round %d: contains(%q) = %v", round, text, !(len(want) > 0))
		}
	}
	for _, p := range added {
		a.remove(p)
	}
	if a.patterns != 0 || len(a.free) != len(a.parent)-1 {
		t.Errorf("after removing everything: %d patterns, %d of %d nodes free", a.patterns, len(a.free), len(a.parent)-1)
	}
}
