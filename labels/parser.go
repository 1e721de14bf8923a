package labels

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/boxsup/boxsup/messages"
)

// parser is a recursive-descent parser over the lexer, one token of
// lookahead.
type parser struct {
	lex   lexer
	input string
	tok   token
}

func (p *parser) advance() { p.tok = p.lex.next() }

func (p *parser) errorf(format string, args ...any) error {
	return messages.Errorf(messages.ErrBadSpec, "label selector %q: at offset %d: %s",
		p.input, p.tok.pos, fmt.Sprintf(format, args...))
}

// requirement parses one term: !key, key, key op value, key in|notin (set).
func (p *parser) requirement() (requirement, error) {
	if p.tok.kind == tokNot {
		p.advance()
		key, err := p.key()
		if err != nil {
			return requirement{}, err
		}
		return requirement{key: key, op: opDoesNotExist}, nil
	}
	key, err := p.key()
	if err != nil {
		return requirement{}, err
	}
	r := requirement{key: key}
	switch op := p.tok; {
	case op.kind == tokEnd || op.kind == tokComma:
		r.op = opExists
		return r, nil
	case op.kind == tokEquals || op.kind == tokNotEquals:
		p.advance()
		r.op, r.equality = opIn, true
		if op.kind == tokNotEquals {
			r.op = opNotIn
		}
		v, err := p.exactValue()
		if err != nil {
			return requirement{}, err
		}
		r.values = []string{v}
		return r, nil
	case op.kind == tokGreater || op.kind == tokLess:
		p.advance()
		r.op = opGreaterThan
		if op.kind == tokLess {
			r.op = opLessThan
		}
		if p.tok.kind != tokIdent {
			return requirement{}, p.errorf("want an integer after %q", op.text)
		}
		n, err := strconv.ParseInt(p.tok.text, 10, 64)
		if err != nil {
			return requirement{}, p.errorf("%q is not an integer", p.tok.text)
		}
		r.values = []string{strconv.FormatInt(n, 10)}
		p.advance()
		return r, nil
	case op.kind == tokIdent && (op.text == "in" || op.text == "notin"):
		p.advance()
		r.op = opIn
		if op.text == "notin" {
			r.op = opNotIn
		}
		vals, err := p.valueSet()
		if err != nil {
			return requirement{}, err
		}
		r.values = vals
		return r, nil
	}
	return requirement{}, p.errorf("want an operator (=, ==, !=, in, notin, <, >), ',' or the end after key %q, found %q", key, p.tok.text)
}

// key reads and validates a label key.
func (p *parser) key() (string, error) {
	if p.tok.kind != tokIdent {
		return "", p.errorf("want a label key, found %s", describe(p.tok))
	}
	if why := keyProblem(p.tok.text); why != "" {
		return "", p.errorf("label key %q: %s", p.tok.text, why)
	}
	k := p.tok.text
	p.advance()
	return k, nil
}

// exactValue reads the value after =, == or !=; it may be empty
// ("key=" matches a label whose value is empty).
func (p *parser) exactValue() (string, error) {
	switch p.tok.kind {
	case tokEnd, tokComma:
		return "", nil
	case tokIdent:
		v := p.tok.text
		if why := valueProblem(v); why != "" {
			return "", p.errorf("label value %q: %s", v, why)
		}
		p.advance()
		return v, nil
	}
	return "", p.errorf("want a value, found %s", describe(p.tok))
}

// valueSet reads "(v1, v2, ...)": at least one value, each possibly empty
// ("(a,)" holds a and the empty value), sorted and deduplicated.
func (p *parser) valueSet() ([]string, error) {
	if p.tok.kind != tokOpenParen {
		return nil, p.errorf("want '(' to open a set of values, found %s", describe(p.tok))
	}
	p.advance()
	if p.tok.kind == tokCloseParen {
		return nil, p.errorf("a set of values must not be empty")
	}
	var vals []string
	for {
		v := ""
		if p.tok.kind == tokIdent {
			v = p.tok.text
			if why := valueProblem(v); why != "" {
				return nil, p.errorf("label value %q: %s", v, why)
			}
			p.advance()
		}
		vals = append(vals, v)
		switch p.tok.kind {
		case tokComma:
			p.advance()
		case tokCloseParen:
			p.advance()
			slices.Sort(vals)
			return slices.Compact(vals), nil
		default:
			return nil, p.errorf("want ',' or ')' in a set of values, found %s", describe(p.tok))
		}
	}
}

// describe names a token for an error message.
func describe(t token) string {
	if t.kind == tokEnd {
		return "the end"
	}
	return strconv.Quote(t.text)
}
