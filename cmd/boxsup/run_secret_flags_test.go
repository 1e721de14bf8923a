package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestRunFlagErrorsNeverQuoteASecret (found by an attacker: a malformed
// --health-tcp, --restart or --label whose value was a secret was quoted
// in the error before anything reached the supervisor).
func TestRunFlagErrorsNeverQuoteASecret(t *testing.T) {
	t.Parallel()
	const value = "PREFIXabcd1234SUFFIX"
	cases := map[string]func(*runOptions){
		"--health-tcp": func(o *runOptions) { o.health.tcp = value },
		"--restart":    func(o *runOptions) { o.restart = value },
		"--label":      func(o *runOptions) { o.labels = []string{"k=-" + value} },
		"--ready-when": func(o *runOptions) { o.health.readyWhen = value },
	}
	for flag, set := range cases {
		o := runOptions{secretEnv: []string{"TOK=" + value}}
		set(&o)
		_, _, err := buildStartRequest(&o, []string{"/bin/true"})
		if err == nil {
			t.Errorf("%s: no error for a malformed value", flag)
			continue
		}
		if strings.Contains(err.Error(), value) || !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%s: %v; want ErrBadSpec without the secret", flag, err)
		}
	}
}

// TestFlagParseErrorsNeverQuoteASecret: a typed flag's parse error ("invalid
// argument ... for --stop-timeout") comes before run reads its secrets.
func TestFlagParseErrorsNeverQuoteASecret(t *testing.T) {
	t.Parallel()
	const value = "Zq9SecretVal77"
	r := runBoxsup(t, []string{"TOK=" + value}, "run", "--secret-env", "TOK", "--stop-timeout", value, "--", "/bin/true")
	if r.code != 2 || strings.Contains(r.stderr+r.stdout, value) || !strings.Contains(r.stderr, "--stop-timeout") {
		t.Fatalf("a malformed --stop-timeout holding a secret: %s; want exit 2 naming the flag, not the value", r)
	}
	if got := argSecretValues([]string{"--secret-env", "A=abcd", "--secret-env=B=efgh", "--", "--secret-env", "C=ijkl"}); len(got) != 2 || got[0] != "abcd" || got[1] != "efgh" {
		t.Fatalf("argSecretValues = %q; want [abcd efgh] (nothing after --)", got)
	}
}
