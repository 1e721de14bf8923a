package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCompletionScripts: bash, zsh and fish scripts, nothing else.
func TestCompletionScripts(t *testing.T) {
	e := newEnv(t)
	for shell, marker := range map[string]string{
		"bash": "# bash completion V2 for boxsup",
		"zsh":  "#compdef boxsup",
		"fish": "# fish completion for boxsup",
	} {
		r := e.must("completion", shell)
		if !strings.HasPrefix(r.stdout, marker) {
			t.Errorf("completion %s starts %q, want %q", shell, firstLineOf(r.stdout), marker)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		script := e.must("completion", "bash").stdout
		if out, err := exec.Command(bash, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n rejects the completion script: %v\n%s", err, out)
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		if r := e.boxsup(args...); r.code != 2 {
			t.Errorf("boxsup %v: want exit 2: %s", args, r)
		}
	}
}

// TestCompletionOfBoxIDsAndFlagValues asks cobra's completion entry point
// what a shell would get.
func TestCompletionOfBoxIDsAndFlagValues(t *testing.T) {
	e := newEnv(t)
	e.runDetached("web", nil, "exec sleep 1000")
	e.runDetached("worker", nil, "exec sleep 1000")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"stop", "w"}, []string{"web", "worker"}},
		{[]string{"rm", "web", ""}, []string{"worker"}},
		{[]string{"logs", "wo"}, []string{"worker"}},
		{[]string{"run", "--restart", ""}, []string{"no", "on-failure", "always"}},
		{[]string{"ps", "--format", ""}, []string{"table", "json"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
	}
	for _, c := range cases {
		r := e.must(append([]string{"__complete"}, c.args...)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasPrefix(l, ":") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("completing %v: %v, want %v", c.args, got, c.want)
		}
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
