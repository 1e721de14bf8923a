package labels

import (
	"errors"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

func TestParseAndMatch(t *testing.T) {
	t.Parallel()
	web := map[string]string{"app": "web", "tier": "front", "env": "prod", "replicas": "3", "empty": ""}
	db := map[string]string{"app": "db", "tier": "db", "env": "staging"}
	bare := map[string]string{}
	cases := []struct {
		sel           string
		canonical     string
		web, db, bare bool
	}{
		{"", "", true, true, true},
		{"   ", "", true, true, true},
		{"app=web", "app=web", true, false, false},
		{"app==web", "app=web", true, false, false},
		{"app = web", "app=web", true, false, false},
		{"app!=web", "app!=web", false, true, true}, // no label matches !=, as in Kubernetes
		{"app=web,tier!=db", "app=web,tier!=db", true, false, false},
		{"tier!=db,app=web", "app=web,tier!=db", true, false, false},
		{"env in (prod,staging)", "env in (prod,staging)", true, true, false},
		{"env in (staging, prod, prod)", "env in (prod,staging)", true, true, false},
		{"env notin (prod)", "env notin (prod)", false, true, true},
		{"env in (prod)", "env in (prod)", true, false, false},
		{"tier", "tier", true, true, false},
		{"!tier", "!tier", false, false, true},
		{"! tier", "!tier", false, false, true},
		{"empty=", "empty=", true, false, false},
		{"empty in (,x)", "empty in (,x)", true, false, false},
		{"replicas>2", "replicas>2", true, false, false},
		{"replicas<3", "replicas<3", false, false, false},
		{"replicas>-1", "replicas>-1", true, false, false},
		{"app>1", "app>1", false, false, false}, // not an integer: no match
		{"boxsup.dev/apply-id=abc", "boxsup.dev/apply-id=abc", false, false, false},
		{"app=web,app=db", "app=web,app=db", false, false, false},
		{"in=x", "in=x", false, false, false}, // a key may be spelt like a keyword
		{"app in (web),!missing", "app in (web),!missing", true, false, false},
		{"tier,!canary", "!canary,tier", true, true, false},
	}
	for _, c := range cases {
		sel, err := Parse(c.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.sel, err)
			continue
		}
		if got := sel.String(); got != c.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", c.sel, got, c.canonical)
		}
		if sel.Empty() != (c.canonical == "") {
			t.Errorf("Parse(%q).Empty() = %v", c.sel, sel.Empty())
		}
		for _, m := range []struct {
			name string
			set  map[string]string
			want bool
		}{{"web", web, c.web}, {"db", db, c.db}, {"bare", bare, c.bare}} {
			if got := sel.Matches(m.set); got != m.want {
				t.Errorf("Parse(%q).Matches(%s) = %v, want %v", c.sel, m.name, got, m.want)
			}
		}
		if sel.Matches(nil) != c.bare {
			t.Errorf("Parse(%q): a nil set must match as an empty one", c.sel)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ sel, want string }{
		{",", "at offset 0: want a label key"},
		{"app=web,", "at offset 8: want a label key, found the end"},
		{"app=web tier=db", "at offset 8: want ',' or the end"},
		{"app in ()", "a set of values must not be empty"},
		{"app in web", "want '(' to open a set of values"},
		{"app in (web", "want ',' or ')' in a set of values, found the end"},
		{"app notin (a b)", "want ',' or ')'"},
		{"app>x", `"x" is not an integer`},
		{"app>", "want an integer"},
		{"app foo", "want an operator"},
		{"!", "want a label key, found the end"},
		{"!app=web", "want ',' or the end"},
		{"-app=web", `label key "-app": the name must start and end with a letter or digit`},
		{"app=-web", `label value "-web"`},
		{"Example.com/app=x", "the prefix must be a lower-case DNS subdomain"},
		{"/app=x", "the prefix must not be empty"},
		{"a/=x", "the name must not be empty"},
		{strings.Repeat("k", 64) + "=x", "longer than 63"},
		{"app=" + strings.Repeat("v", 64), "longer than 63"},
		{"app in (a,b c)", "want ',' or ')'"},
		{"app=w@b", "may hold only letters"},
		{"app==", ""}, // "app==" is app equal to the empty value: valid, checked below
	}
	for _, c := range cases {
		_, err := Parse(c.sel)
		if c.want == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", c.sel, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Parse(%q): no error, want %q", c.sel, c.want)
			continue
		}
		if !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("Parse(%q): %v is not ErrBadSpec", c.sel, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", c.sel, err, c.want)
		}
	}
}

func TestMustParsePanicsOnError(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("MustParse of a bad selector did not panic")
		}
	}()
	MustParse("app in ()")
}

func TestZeroSelectorMatchesEverything(t *testing.T) {
	t.Parallel()
	var s Selector
	if !s.Empty() || !s.Matches(nil) || !s.Matches(map[string]string{"a": "b"}) || s.String() != "" {
		t.Error("the zero Selector must be empty and match everything")
	}
}

// FuzzParse: Parse never panics; what it accepts prints in a canonical form
// that parses to the same selector (same form, same verdicts).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"app=web,tier!=db", "env in (a,b)", "env notin (a,,b)", "!key", "key", "x>1", "y<-2",
		"boxsup.dev/apply-id=0123abcd", "a==", "a in (b", "!", "(,)", "a=b,", "k.k-k_k/x=y",
	} {
		f.Add(s)
	}
	probes := []map[string]string{
		nil, {"app": "web"}, {"env": "a"}, {"key": ""}, {"x": "2"}, {"y": "-3"},
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			if !errors.Is(err, messages.ErrBadSpec) {
				t.Fatalf("Parse(%q): error %v is not ErrBadSpec", s, err)
			}
			return
		}
		canon := sel.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) gave %q, which does not parse: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q -> %q", s, canon, again.String())
		}
		for _, p := range probes {
			if sel.Matches(p) != again.Matches(p) {
				t.Fatalf("%q and its canonical form %q disagree on %v", s, canon, p)
			}
		}
	})
}
