package layout

import (
	"fmt"
	"unicode/utf8"

	"github.com/boxsup/boxsup/messages"
)

// MaxIDLen is the longest box ID accepted, in bytes.
const MaxIDLen = 64

// quoteLimit bounds how much of an over-long ID an error message repeats, so a
// megabyte of garbage does not become a megabyte of error text.
const quoteLimit = 80

// ValidateID checks that id is a usable box ID: 1 to 64 bytes of
// [A-Za-z0-9_.-], starting with a letter or digit. Such an ID is a single path
// element that can never be ".", "..", a hidden name (boxsup uses hidden names
// for directories being removed) or an option ("-x"). A bad ID gives
// messages.ErrInvalidID with the ID quoted and the reason.
func ValidateID(id string) error {
	switch {
	case id == "":
		return messages.Errorf(messages.ErrInvalidID, `"": must not be empty`)
	case id == "." || id == "..":
		return messages.Errorf(messages.ErrInvalidID, "%q: is reserved as a path element", id)
	case len(id) > MaxIDLen:
		return messages.Errorf(messages.ErrInvalidID, "%s: is %d bytes long, the limit is %d", quoteShort(id), len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if isAlnum(c) || (i > 0 && (c == '_' || c == '.' || c == '-')) {
			continue
		}
		switch {
		case c == '/':
			return messages.Errorf(messages.ErrInvalidID, "%q: contains '/' (an ID is a single path element)", id)
		case c == 0:
			return messages.Errorf(messages.ErrInvalidID, "%q: contains a NUL byte", id)
		case i == 0 && (c == '_' || c == '.' || c == '-'):
			return messages.Errorf(messages.ErrInvalidID, "%q: must start with a letter or digit, not %q", id, rune(c))
		}
		r, _ := utf8.DecodeRuneInString(id[i:])
		return messages.Errorf(messages.ErrInvalidID,
			"%q: contains %q at byte %d; only letters, digits, '_', '.' and '-' are allowed", id, r, i)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// quoteShort quotes s, cut to quoteLimit bytes with a marker when longer.
func quoteShort(s string) string {
	if len(s) <= quoteLimit {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:quoteLimit])
}
