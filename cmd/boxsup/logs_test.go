package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLogsOptions: --stream, --tail, --timestamps and --since select from
// the console as documented; bad values are usage errors (exit 2).
func TestLogsOptions(t *testing.T) {
	e := newEnv(t)
	// The guest waits for a gate so that it is running when run -d returns
	// (a guest that exits at once can race its own ready byte).
	gate := filepath.Join(t.TempDir(), "gate")
	e.runDetached("chat", nil, "while [ ! -e "+gate+" ]; do sleep 0.01; done; echo out-1; echo err-1 >&2; echo out-2")
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	all := e.must("logs", "-f", "chat").stdout
	if got := strings.Split(strings.TrimSuffix(all, "\n"), "\n"); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"err-1", "out-1", "out-2"}) {
		t.Fatalf("logs -f printed %q", all)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--stream", "stdout"}, "out-1\nout-2\n"},
		{[]string{"--stream", "stderr"}, "err-1\n"},
		{[]string{"--tail", "1", "--stream", "stdout"}, "out-2\n"},
		{[]string{"-n", "5", "--stream", "stdout"}, "out-1\nout-2\n"},
		{[]string{"--tail", "0"}, ""},
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, ""},
		{[]string{"--since", "1h"}, all},
	} {
		if got := e.must(append(append([]string{"logs"}, tc.args...), "chat")...).stdout; got != tc.want {
			t.Errorf("logs %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	stamped := e.must("logs", "--timestamps", "--stream", "stderr", "chat").stdout
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z err-1\n$`).MatchString(stamped) {
		t.Errorf("logs --timestamps: %q", stamped)
	}
	for _, args := range [][]string{
		{"logs", "--tail", "x", "chat"},
		{"logs", "--tail", "-2", "chat"},
		{"logs", "--stream", "both", "chat"},
		{"logs", "--since", "yesterday", "chat"},
	} {
		if r := e.boxsup(args...); r.code != 2 || !strings.HasPrefix(r.stderr, "boxsup: ") {
			t.Errorf("boxsup %v: %s; want a usage error (exit 2)", args, r)
		}
	}
}
