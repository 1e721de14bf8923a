package declare

import (
	"slices"
	"strings"
)

// order checks every dependency names a declared box, refuses cycles
// (naming one), and sorts f.Declared into waves: a box's wave is one more than
// the latest wave of its dependencies.
func (f *BoxesFile) order(at positions) error {
	index := make(map[string]int, len(f.Declared))
	for i, b := range f.Declared {
		index[b.ID()] = i
	}
	for _, b := range f.Declared {
		for _, d := range b.DependsOn {
			if _, ok := index[d.ID]; !ok {
				return errorAt(at.field(b.ID(), "depends_on"), "box %s: depends_on: no box %q is declared", b.ID(), d.ID)
			}
		}
	}
	if cycle := findCycle(f.Declared, index); cycle != nil {
		return errorAt(at.field(cycle[0], "depends_on"), "dependency cycle: %s (each depends on the next)", describeCycle(cycle))
	}
	wave := make([]int, len(f.Declared))
	var level func(i int) int
	done := make([]bool, len(f.Declared))
	level = func(i int) int {
		if done[i] {
			return wave[i]
		}
		w := 0
		for _, d := range f.Declared[i].DependsOn {
			w = max(w, level(index[d.ID])+1)
		}
		wave[i], done[i] = w, true
		return w
	}
	maxWave := 0
	for i := range f.Declared {
		maxWave = max(maxWave, level(i))
	}
	type ranked struct {
		box  *DeclaredBox
		wave int
	}
	rs := make([]ranked, len(f.Declared))
	for i, b := range f.Declared {
		rs[i] = ranked{b, wave[i]}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a.wave != b.wave {
			return a.wave - b.wave
		}
		return strings.Compare(a.box.ID(), b.box.ID())
	})
	f.Declared = f.Declared[:0]
	f.Waves = make([][]int, maxWave+1)
	for i, r := range rs {
		f.Declared = append(f.Declared, r.box)
		f.Waves[r.wave] = append(f.Waves[r.wave], i)
	}
	return nil
}

// findCycle returns the IDs of one dependency cycle, starting at its
// smallest ID, or nil. Depth-first search with colours, in ID order so that
// the cycle reported for a file is always the same.
func findCycle(boxes []*DeclaredBox, index map[string]int) []string {
	const (
		white = iota
		grey
		black
	)
	colour := make([]int, len(boxes))
	var stack []int
	var found []string
	var visit func(i int) bool
	visit = func(i int) bool {
		colour[i] = grey
		stack = append(stack, i)
		for _, d := range boxes[i].DependsOn {
			j := index[d.ID]
			switch colour[j] {
			case grey:
				start := slices.Index(stack, j)
				for _, k := range stack[start:] {
					found = append(found, boxes[k].ID())
				}
				return true
			case white:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		colour[i] = black
		return false
	}
	for i := range boxes {
		if colour[i] == white && visit(i) {
			break
		}
	}
	if found == nil {
		return nil
	}
	// Rotate so the cycle starts at its smallest ID.
	m := slices.Index(found, slices.Min(found))
	return append(found[m:], found[:m]...)
}
