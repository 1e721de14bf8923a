package logging

import (
	"sync"
	"sync/atomic"
)

// automaton is an Aho–Corasick automaton that supports adding and removing
// patterns at any time, so that registering a box's secrets costs time in
// proportion to their length, not to every secret already registered, and a
// scan costs time in proportion to the text, not to the number of secrets.
//
// The trie (goto function) is updated in place under mu. What an update
// invalidates are the failure and dictionary links of existing nodes (a new
// pattern can be a longer suffix for many of them); rather than recompute
// them all (as a rebuild would: the cost that made registration quadratic),
// an update only bumps epoch, and each link is recomputed lazily, the first
// time a scan needs it in the new epoch, from its parent's link, exactly as
// the classic breadth-first construction would. A link is cached as
// epoch<<32|node in an atomic word, so scans (which hold mu for reading
// only) can fill the cache concurrently: two scans computing the same link
// in the same epoch store the same value.
//
// Nodes live in parallel slices (index 0 is the root), which only grow or
// shrink while mu is held for writing, when no scan runs. Children are a
// linked list of siblings, replaced by a 256-entry table once a node has
// more than denseAfter children, and the root always has a table.
type automaton struct {
	mu sync.RWMutex

	parent []int32  // parent node; -1 for the root and free slots
	edge   []byte   // the byte on the edge from the parent
	depth  []int32  // length of the node's string
	terms  []int32  // how many patterns end here (registrations are counted by the caller)
	first  []int32  // first child, -1 when none
	next   []int32  // next sibling, -1 when none
	table  []int32  // index into tables when the node has a dense table, else -1
	fail   []uint64 // epoch<<32 | failure link (lazy)
	dict   []uint64 // epoch<<32 | nearest terminal proper suffix, 0 for none (lazy)
	tables [][256]int32
	free   []int32 // released node slots
	freeT  []int32 // released tables

	epoch    uint32 // bumped by every change to the language; read under mu
	patterns int    // distinct patterns stored
}

// denseAfter is the number of children after which a node gets a table.
const denseAfter = 8

// newAutomaton returns an automaton holding only the root.
func newAutomaton() *automaton {
	a := &automaton{}
	a.alloc(-1, 0, 0)
	a.giveTable(0)
	return a
}

// alloc returns a fresh node (a free slot when there is one).
func (a *automaton) alloc(parent int32, b byte, depth int32) int32 {
	if n := len(a.free); n > 0 {
		v := a.free[n-1]
		a.free = a.free[:n-1]
		a.parent[v], a.edge[v], a.depth[v], a.terms[v] = parent, b, depth, 0
		a.first[v], a.next[v], a.table[v], a.fail[v], a.dict[v] = -1, -1, -1, 0, 0
		return v
	}
	v := int32(len(a.parent))
	a.parent = append(a.parent, parent)
	a.edge = append(a.edge, b)
	a.depth = append(a.depth, depth)
	a.terms = append(a.terms, 0)
	a.first = append(a.first, -1)
	a.next = append(a.next, -1)
	a.table = append(a.table, -1)
	a.fail = append(a.fail, 0)
	a.dict = append(a.dict, 0)
	return v
}

// giveTable gives v a dense child table filled from its sibling list.
func (a *automaton) giveTable(v int32) {
	var t int32
	if n := len(a.freeT); n > 0 {
		t = a.freeT[n-1]
		a.freeT = a.freeT[:n-1]
	} else {
		t = int32(len(a.tables))
		a.tables = append(a.tables, [256]int32{})
	}
	tab := &a.tables[t]
	for i := range tab {
		tab[i] = -1
	}
	for c := a.first[v]; c >= 0; c = a.next[c] {
		tab[a.edge[c]] = c
	}
	a.table[v] = t
}

// child returns v's child on byte b, or -1.
func (a *automaton) child(v int32, b byte) int32 {
	if t := a.table[v]; t >= 0 {
		return a.tables[t][b]
	}
	for c := a.first[v]; c >= 0; c = a.next[c] {
		if a.edge[c] == b {
			return c
		}
	}
	return -1
}

// add stores pattern p (at least one byte). mu must be held for writing.
func (a *automaton) add(p string) {
	v := int32(0)
	for i := 0; i < len(p); i++ {
		c := a.child(v, p[i])
		if c < 0 {
			c = a.alloc(v, p[i], int32(i+1))
			a.next[c] = a.first[v]
			a.first[v] = c
			if t := a.table[v]; t >= 0 {
				a.tables[t][p[i]] = c
			} else if a.degree(v) > denseAfter {
				a.giveTable(v)
			}
		}
		v = c
	}
	if a.terms[v] == 0 {
		a.patterns++
	}
	a.terms[v]++
	a.bump()
}

// remove drops one occurrence of pattern p, which must have been added, and
// prunes the branch it leaves unused. mu must be held for writing.
func (a *automaton) remove(p string) {
	v := int32(0)
	for i := 0; i < len(p) && v >= 0; i++ {
		v = a.child(v, p[i])
	}
	if v <= 0 || a.terms[v] == 0 {
		return
	}
	if a.terms[v]--; a.terms[v] > 0 {
		return
	}
	a.patterns--
	for v > 0 && a.terms[v] == 0 && a.first[v] < 0 {
		up := a.parent[v]
		a.unlink(up, v)
		if t := a.table[v]; t >= 0 {
			a.freeT = append(a.freeT, t)
		}
		a.parent[v] = -1
		a.free = append(a.free, v)
		v = up
	}
	a.bump()
}

// unlink removes child c from p's children.
func (a *automaton) unlink(p, c int32) {
	if t := a.table[p]; t >= 0 {
		a.tables[t][a.edge[c]] = -1
	}
	if a.first[p] == c {
		a.first[p] = a.next[c]
		return
	}
	for s := a.first[p]; s >= 0; s = a.next[s] {
		if a.next[s] == c {
			a.next[s] = a.next[c]
			return
		}
	}
}

func (a *automaton) degree(v int32) int {
	n := 0
	for c := a.first[v]; c >= 0; c = a.next[c] {
		n++
	}
	return n
}

// bump invalidates every cached link. On the (theoretical) wrap of the
// epoch counter the caches are cleared, so an old entry never looks current.
func (a *automaton) bump() {
	a.epoch++
	if a.epoch == 0 {
		clear(a.fail)
		clear(a.dict)
		a.epoch = 1
	}
}

// failOf returns v's failure link: the node of the longest proper suffix of
// v's string that is in the trie. mu must be held (for reading suffices).
func (a *automaton) failOf(v int32) int32 {
	e := uint64(a.epoch) << 32
	if x := atomic.LoadUint64(&a.fail[v]); x&^0xffffffff == e {
		return int32(uint32(x))
	}
	f := int32(0)
	if a.depth[v] > 1 {
		b := a.edge[v]
		u := a.failOf(a.parent[v])
		for {
			if c := a.child(u, b); c >= 0 {
				f = c
				break
			}
			if u == 0 {
				break
			}
			u = a.failOf(u)
		}
	}
	atomic.StoreUint64(&a.fail[v], e|uint64(uint32(f)))
	return f
}

// dictOf returns the node of the longest pattern that is a proper suffix of
// v's string, or 0 when there is none. mu must be held.
func (a *automaton) dictOf(v int32) int32 {
	e := uint64(a.epoch) << 32
	if x := atomic.LoadUint64(&a.dict[v]); x&^0xffffffff == e {
		return int32(uint32(x))
	}
	d := int32(0)
	if f := a.failOf(v); f > 0 {
		if a.terms[f] > 0 {
			d = f
		} else {
			d = a.dictOf(f)
		}
	}
	atomic.StoreUint64(&a.dict[v], e|uint64(uint32(d)))
	return d
}

// step moves from state v on byte b. mu must be held.
func (a *automaton) step(v int32, b byte) int32 {
	for {
		if c := a.child(v, b); c >= 0 {
			return c
		}
		if v == 0 {
			return 0
		}
		v = a.failOf(v)
	}
}

// longestMatch returns the length of the longest pattern that ends at the
// current state v, or 0. mu must be held.
func (a *automaton) longestMatch(v int32) int32 {
	if v == 0 {
		return 0
	}
	if a.terms[v] > 0 {
		return a.depth[v]
	}
	if d := a.dictOf(v); d > 0 {
		return a.depth[d]
	}
	return 0
}

// spans appends to out the byte ranges [start, end) of s covered by pattern
// occurrences, overlapping or touching ones merged, in order. mu must be
// held.
func (a *automaton) spans(s string, out [][2]int) [][2]int {
	v := int32(0)
	for i := 0; i < len(s); i++ {
		v = a.step(v, s[i])
		n := a.longestMatch(v)
		if n == 0 {
			continue
		}
		start, end := i+1-int(n), i+1
		// The spans found so far end at or before i; a new one may reach
		// back over several of them.
		for len(out) > 0 && out[len(out)-1][1] >= start {
			start = min(start, out[len(out)-1][0])
			out = out[:len(out)-1]
		}
		out = append(out, [2]int{start, end})
	}
	return out
}

// contains reports whether s holds any pattern. mu must be held.
func (a *automaton) contains(s string) bool {
	v := int32(0)
	for i := 0; i < len(s); i++ {
		v = a.step(v, s[i])
		if a.longestMatch(v) > 0 {
			return true
		}
	}
	return false
}
