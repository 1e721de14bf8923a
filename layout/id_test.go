package layout

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

var validIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func TestValidateIDAccepts(t *testing.T) {
	for _, id := range []string{
		"a", "Z", "0", "web", "web-1", "web_1", "web.1", "a..b", "a.", "9-._",
		strings.Repeat("x", MaxIDLen),
	} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
}

func TestValidateIDRejects(t *testing.T) {
	for _, tc := range []struct {
		id, why string
	}{
		{"", "must not be empty"},
		{".", "reserved"},
		{"..", "reserved"},
		{"a/b", "contains '/'"},
		{"/abs", "contains '/'"},
		{"a\x00b", "NUL"},
		{strings.Repeat("x", MaxIDLen+1), "65 bytes long"},
		{"-rf", "must start with a letter or digit"},
		{".hidden", "must start with a letter or digit"},
		{"_x", "must start with a letter or digit"},
		{"a b", "contains ' '"},
		{"a:b", "contains ':'"},
		{"a\\b", `contains '\\'`},
		{"ünï", "contains 'ü'"},
		{"a\nb", `contains '\n'`},
	} {
		err := ValidateID(tc.id)
		if !errors.Is(err, messages.ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", tc.id, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.why) {
			t.Errorf("ValidateID(%q) = %q, want the reason %q", tc.id, msg, tc.why)
		}
		quoted := quoteShort(tc.id)
		if len(tc.id) > quoteLimit {
			quoted = strings.TrimSuffix(quoted, `"...`)
		}
		if !strings.Contains(msg, quoted) {
			t.Errorf("ValidateID(%q) = %q, want the id quoted as %s", tc.id, msg, quoted)
		}
	}
}

func TestValidateIDQuotesLongIDsShortly(t *testing.T) {
	err := ValidateID(strings.Repeat("y", 1<<20))
	if !errors.Is(err, messages.ErrInvalidID) {
		t.Fatalf("got %v, want ErrInvalidID", err)
	}
	if n := len(err.Error()); n > 300 {
		t.Errorf("error for a 1 MiB id is %d bytes long; want it cut short", n)
	}
}

// FuzzValidateID checks that every accepted id matches the documented pattern
// and is a single clean path element that stays under its parent directory.
func FuzzValidateID(f *testing.F) {
	for _, seed := range []string{
		"", ".", "..", "a", "a/b", "../x", "x/..", "-x", ".x", "a\x00", "a..", "web-1.2_3",
		strings.Repeat("z", 64), strings.Repeat("z", 65), "é", " a", "a ",
	} {
		f.Add(seed)
	}
	const root = "/home/u/.local/state/boxsup/boxes"
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if err != nil {
			if !errors.Is(err, messages.ErrInvalidID) {
				t.Fatalf("ValidateID(%q) = %v: not an ErrInvalidID", id, err)
			}
			if validIDPattern.MatchString(id) && id != "." && id != ".." {
				t.Fatalf("ValidateID(%q) rejected an id matching the pattern: %v", id, err)
			}
			return
		}
		if !validIDPattern.MatchString(id) {
			t.Fatalf("ValidateID(%q) accepted an id outside the pattern", id)
		}
		if filepath.Clean(id) != id || filepath.Base(id) != id || strings.HasPrefix(id, ".") {
			t.Fatalf("ValidateID(%q) accepted an id that is not a single clean, visible path element", id)
		}
		joined := filepath.Join(root, id)
		if filepath.Dir(joined) != root {
			t.Fatalf("ValidateID(%q) accepted an id that escapes its parent: %s", id, joined)
		}
		if rel, err := filepath.Rel(root, joined); err != nil || rel != id {
			t.Fatalf("ValidateID(%q): Rel(root, Join(root, id)) = %q, %v", id, rel, err)
		}
	})
}
