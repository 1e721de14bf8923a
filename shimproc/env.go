package shimproc

import (
	"strings"

	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// minSecretLenForSubstring is the shortest secret value searched for inside
// other variables' values. Shorter values (they are weak secrets anyway) would
// match ordinary text, so for them only an exact value match removes a
// variable. It matches the log redactor's threshold.
const minSecretLenForSubstring = 4

// shimEnv returns the environment for a shim: environ minus every variable
// that could carry a secret, i.e. whose name is one of the spec's secret
// names or whose value holds one of the spec's secret values or any value
// registered with the log redactor (logging.RegisterSecrets: another box's
// secrets, for instance). The guest receives its secrets
// inside the spec, never through the shim's environment, which other users
// can read in /proc/PID/environ.
func shimEnv(environ []string, spec *messages.InstanceSpec) []string {
	names := make(map[string]bool, len(spec.Secrets))
	for _, sv := range spec.Secrets {
		names[sv.Name] = true
	}
	values := spec.SecretValues()
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if names[name] || holdsSecret(value, values) || logging.Scrub(value) != value {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// holdsSecret reports whether value contains (or, for very short secrets,
// equals) one of the secret values.
func holdsSecret(value string, secrets []string) bool {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if value == s || (len(s) >= minSecretLenForSubstring && strings.Contains(value, s)) {
			return true
		}
	}
	return false
}

// redactSecrets replaces every secret value in text (the given ones and those
// registered with the log redactor) with messages.Redacted. Error strings
// built from outside text (an exit record's reason, a shim's message) pass
// through it before they leave the package.
func redactSecrets(text string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= minSecretLenForSubstring {
			text = strings.ReplaceAll(text, s, messages.Redacted)
		}
	}
	return logging.Scrub(text)
}
