package main

import (
	"strings"
	"testing"
)

// TestEveryFlagErrorExitsTwo: a bad flag value is a usage error (exit 2,
// "boxsup: " and the reason) whichever command and whichever check finds
// it, before anything is looked up or started (TestUsageErrors has the
// first cases of the issue).
func TestEveryFlagErrorExitsTwo(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"kill", "--signal", "BOGUS", "nosuchbox"}, `--signal "BOGUS"`},
		{[]string{"kill", "--signal", "0", "nosuchbox"}, `--signal "0"`},
		{[]string{"kill", "--signal", "65", "nosuchbox"}, `--signal "65"`},
		{[]string{"run", "--max-restarts", "abc", "--", "true"}, "invalid argument"},
		{[]string{"run", "--cpus", "abc", "--", "true"}, "--cpus"},
		{[]string{"run", "--memory", "lots", "--", "true"}, "--memory"},
		{[]string{"run", "--pids-limit", "-1", "--", "true"}, "invalid argument"},
		{[]string{"run", "--ulimit", "bogus=1", "--", "true"}, "--ulimit"},
		{[]string{"run", "--security-opt", "bogus", "--", "true"}, "--security-opt"},
		{[]string{"run", "--network", "bogus", "--", "true"}, "--network"},
		{[]string{"run", "--pid", "bogus", "--", "true"}, "--pid"},
		{[]string{"run", "-e", "=x", "--", "true"}, "-e"},
		{[]string{"run", "--ready-timeout", "-1s", "--", "true"}, "must not be negative"},
		{[]string{"run", "--user", "no-such-user-e2e", "--", "true"}, "--user"},
		{[]string{"stop", "--timeout", "abc", "nosuchbox"}, "invalid argument"},
		{[]string{"logs", "--tail", "-5", "nosuchbox"}, "--tail"},
		{[]string{"logs", "--since", "yesterday", "nosuchbox"}, "--since"},
		{[]string{"logs", "--stream", "both", "nosuchbox"}, "--stream"},
		{[]string{"ps", "--filter", "bogus"}, "--filter"},
		{[]string{"ps", "--filter", "state=bogus"}, "--filter"},
		{[]string{"metrics", "--format", "yaml"}, "--format"},
		{[]string{"rm"}, "requires at least 1 arg"},
	} {
		r := e.boxsup(tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "boxsup: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("boxsup %v: %s; want exit 2 and %q", tc.args, r, tc.want)
		}
		if strings.Contains(r.stderr, "invalid box spec") {
			t.Errorf("boxsup %v: %q calls a command-line mistake an invalid box spec", tc.args, r.stderr)
		}
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Errorf("refused commands made boxes: %v", rows)
	}
}
