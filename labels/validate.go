package labels

import (
	"sort"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// Limits of Kubernetes' label syntax.
const (
	// MaxNameLen is the longest name part of a key, and the longest value.
	MaxNameLen = 63
	// MaxPrefixLen is the longest prefix of a key (a DNS subdomain).
	MaxPrefixLen = 253
)

// ValidateKey checks a label key: an optional prefix, a DNS subdomain of at
// most 253 characters followed by '/', then a name of 1 to 63 characters
// that starts and ends with a letter or digit and has only letters, digits,
// '-', '_' and '.' in between ("app", "boxsup.dev/apply-id").
func ValidateKey(key string) error {
	if why := keyProblem(key); why != "" {
		return messages.Errorf(messages.ErrBadSpec, "label key %q: %s", key, why)
	}
	return nil
}

// ValidateValue checks a label value: empty, or 1 to 63 characters that
// start and end with a letter or digit with only letters, digits, '-', '_'
// and '.' in between.
func ValidateValue(value string) error {
	if why := valueProblem(value); why != "" {
		return messages.Errorf(messages.ErrBadSpec, "label value %q: %s", value, why)
	}
	return nil
}

// Validate checks every key and value of set, in key order so that the
// error for a given set is always the same one.
func Validate(set map[string]string) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := ValidateKey(k); err != nil {
			return err
		}
		if why := valueProblem(set[k]); why != "" {
			return messages.Errorf(messages.ErrBadSpec, "label %s: value %q: %s", k, set[k], why)
		}
	}
	return nil
}

// keyProblem says what is wrong with a key, or "".
func keyProblem(key string) string {
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		name = prefix
	} else if why := prefixProblem(prefix); why != "" {
		return "the prefix " + why
	}
	if name == "" {
		return "the name must not be empty"
	}
	if why := nameProblem(name); why != "" {
		return "the name " + why
	}
	return ""
}

// valueProblem says what is wrong with a value, or "".
func valueProblem(v string) string {
	if v == "" {
		return ""
	}
	return nameProblem(v)
}

// nameProblem says what is wrong with a name or a non-empty value, or "".
func nameProblem(s string) string {
	if len(s) > MaxNameLen {
		return "is longer than 63 characters"
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return "must start and end with a letter or digit"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return "may hold only letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}

// prefixProblem says what is wrong with a key's prefix, or "". A prefix is
// a DNS subdomain (RFC 1123): lower-case parts of letters, digits and '-',
// each starting and ending with a letter or digit, joined by dots.
func prefixProblem(p string) string {
	if p == "" {
		return "must not be empty"
	}
	if len(p) > MaxPrefixLen {
		return "is longer than 253 characters"
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" || len(part) > 63 || !isLowerAlnum(part[0]) || !isLowerAlnum(part[len(part)-1]) {
			return "must be a lower-case DNS subdomain"
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; !isLowerAlnum(c) && c != '-' {
				return "must be a lower-case DNS subdomain"
			}
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
