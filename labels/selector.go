package labels

import (
	"slices"
	"strconv"
	"strings"
)

// operator is the relation one requirement of a selector tests.
type operator int

const (
	opIn           operator = iota // key=v, key==v, key in (v,...)
	opNotIn                        // key!=v, key notin (v,...)
	opExists                       // key
	opDoesNotExist                 // !key
	opGreaterThan                  // key>N
	opLessThan                     // key<N
)

// requirement is one comma-separated term of a selector. values is sorted
// and free of duplicates; for opGreaterThan and opLessThan it holds one
// integer.
type requirement struct {
	key    string
	op     operator
	values []string
	// equality: written with = or != rather than in or notin (for String).
	equality bool
}

// Selector is a parsed label selector: the AND of its requirements. The
// zero Selector is empty and matches every label set. Selectors are
// immutable and safe for concurrent use.
type Selector struct {
	reqs []requirement
}

// Parse parses a selector in Kubernetes' syntax ("app=web,tier!=db",
// "env in (a,b)", "!canary"). Whitespace around tokens is ignored; an empty
// or all-blank string is the empty selector. An error is
// messages.ErrBadSpec and names the offset of the fault.
func Parse(s string) (Selector, error) {
	p := &parser{lex: lexer{s: s}, input: s}
	p.advance()
	var sel Selector
	if p.tok.kind == tokEnd {
		return sel, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return Selector{}, err
		}
		sel.reqs = append(sel.reqs, r)
		switch p.tok.kind {
		case tokEnd:
			slices.SortStableFunc(sel.reqs, func(a, b requirement) int { return strings.Compare(a.key, b.key) })
			return sel, nil
		case tokComma:
			p.advance()
		default:
			return Selector{}, p.errorf("want ',' or the end after a requirement, found %q", p.tok.text)
		}
	}
}

// MustParse is Parse for selectors written in the program; it panics on an
// error.
func MustParse(s string) Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// Empty reports whether the selector has no requirement (it matches
// everything).
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Matches reports whether set satisfies every requirement. A nil set is a
// set without labels.
func (s Selector) Matches(set map[string]string) bool {
	for _, r := range s.reqs {
		if !r.matches(set) {
			return false
		}
	}
	return true
}

// String returns the selector in canonical form: requirements sorted by
// key, set values sorted, no blanks except around in and notin. Parsing it
// gives an equal selector.
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

func (r requirement) matches(set map[string]string) bool {
	v, has := set[r.key]
	switch r.op {
	case opIn:
		return has && slices.Contains(r.values, v)
	case opNotIn:
		return !has || !slices.Contains(r.values, v)
	case opExists:
		return has
	case opDoesNotExist:
		return !has
	case opGreaterThan, opLessThan:
		if !has {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		bound, _ := strconv.ParseInt(r.values[0], 10, 64) // checked by the parser
		if r.op == opGreaterThan {
			return n > bound
		}
		return n < bound
	}
	return false
}

func (r requirement) String() string {
	switch r.op {
	case opExists:
		return r.key
	case opDoesNotExist:
		return "!" + r.key
	case opGreaterThan:
		return r.key + ">" + r.values[0]
	case opLessThan:
		return r.key + "<" + r.values[0]
	}
	if r.equality && len(r.values) == 1 {
		if r.op == opIn {
			return r.key + "=" + r.values[0]
		}
		return r.key + "!=" + r.values[0]
	}
	word := " in "
	if r.op == opNotIn {
		word = " notin "
	}
	return r.key + word + "(" + strings.Join(r.values, ",") + ")"
}
