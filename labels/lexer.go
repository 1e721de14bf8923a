package labels

import "strings"

// tokenKind classifies a token of a selector.
type tokenKind int

const (
	tokEnd        tokenKind = iota // end of input
	tokIdent                       // a key, a value, or the words in and notin
	tokComma                       // ,
	tokOpenParen                   // (
	tokCloseParen                  // )
	tokNot                         // ! before a key
	tokEquals                      // = or ==
	tokNotEquals                   // !=
	tokGreater                     // >
	tokLess                        // <
)

// token is one lexeme and the byte offset where it starts (for errors).
type token struct {
	kind tokenKind
	text string
	pos  int
}

// specialChars end an identifier.
const specialChars = "!=(),<>"

// singleCharTokens are the one-byte tokens.
var singleCharTokens = map[byte]tokenKind{
	',': tokComma, '(': tokOpenParen, ')': tokCloseParen, '!': tokNot,
	'=': tokEquals, '>': tokGreater, '<': tokLess,
}

// lexer splits a selector into tokens. Whitespace separates tokens and is
// otherwise ignored.
type lexer struct {
	s   string
	pos int
}

func (l *lexer) next() token {
	for l.pos < len(l.s) && isSpace(l.s[l.pos]) {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.s) {
		return token{kind: tokEnd, pos: start}
	}
	two := ""
	if l.pos+1 < len(l.s) {
		two = l.s[l.pos : l.pos+2]
	}
	switch two {
	case "==":
		l.pos += 2
		return token{kind: tokEquals, text: two, pos: start}
	case "!=":
		l.pos += 2
		return token{kind: tokNotEquals, text: two, pos: start}
	}
	if k, ok := singleCharTokens[l.s[l.pos]]; ok {
		l.pos++
		return token{kind: k, text: l.s[start:l.pos], pos: start}
	}
	for l.pos < len(l.s) && !isSpace(l.s[l.pos]) && !strings.ContainsRune(specialChars, rune(l.s[l.pos])) {
		l.pos++
	}
	return token{kind: tokIdent, text: l.s[start:l.pos], pos: start}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
