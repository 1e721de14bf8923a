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
