package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A secret's value may appear in exactly one place of a spec: its own
// entry. Anywhere else it would be shown or shared where secrets never go:
// a guest argument is in /proc/PID/cmdline for every user to read, the
// executable, working directory, env and paths are printed by inspect and
// in error messages, and a label by ps. Validate therefore refuses a spec
// in which any other field holds a secret value, and names the field, never
// the value. It runs before every other check, so that no later error
// message can quote a field that holds a secret.

// secretOutsideItsEntry returns the JSON path ("guest_entrypoint.args[1]")
// of the first field of s, other than the secrets themselves, whose text
// contains the value of one of s's secrets, and the secret's name.
func (s *InstanceSpec) secretOutsideItsEntry() (path, secret string, found bool) {
	named := s.namedSecretValues()
	if len(named) == 0 {
		return "", "", false
	}
	rest := *s
	rest.Secrets = nil
	if s.NetworkConfig != nil {
		nc := *s.NetworkConfig
		nc.CAKeyPEM = Secret{}
		rest.NetworkConfig = &nc
	}
	raw, err := json.Marshal(&rest)
	if err != nil {
		// Cannot happen for a spec (plain data); refuse rather than let an
		// unchecked spec through.
		return "(the spec could not be encoded)", "", true
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return "(the spec could not be encoded)", "", true
	}
	return findSecret(tree, "", named)
}

// namedSecret is one secret's name and value.
type namedSecret struct{ name, value string }

// namedSecretValues lists the spec's secrets with their names.
func (s *InstanceSpec) namedSecretValues() []namedSecret {
	var out []namedSecret
	for _, sv := range s.Secrets {
		if !sv.Value.IsZero() {
			out = append(out, namedSecret{sv.Name, sv.Value.Reveal()})
		}
	}
	if s.NetworkConfig != nil && !s.NetworkConfig.CAKeyPEM.IsZero() {
		out = append(out, namedSecret{"network_config.ca_key_pem", s.NetworkConfig.CAKeyPEM.Reveal()})
	}
	return out
}

// findSecret walks a decoded JSON value in a fixed order (object keys
// sorted) and returns the path of the first string, or object key, that
// contains one of the secrets.
func findSecret(v any, path string, secrets []namedSecret) (string, string, bool) {
	switch v := v.(type) {
	case string:
		for _, s := range secrets {
			if strings.Contains(v, s.value) {
				return path, s.name, true
			}
		}
	case []any:
		for i, e := range v {
			if p, name, ok := findSecret(e, fmt.Sprintf("%s[%d]", path, i), secrets); ok {
				return p, name, true
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if _, name, ok := findSecret(k, p, secrets); ok {
				return p + " (a key)", name, true
			}
			if p, name, ok := findSecret(v[k], p, secrets); ok {
				return p, name, true
			}
		}
	}
	return "", "", false
}

// CheckSecretsConfined refuses, as ErrBadSpec, a spec in which a field
// other than the secrets holds one of their values, and the same for the
// box's labels (keys and values). The message names the field and the
// secret, never the value. Validate makes the spec's part of this check
// first of all; a caller that quotes anything of a start request in an
// error (its box_id, a label) makes the whole check before.
func (s *InstanceSpec) CheckSecretsConfined(labels map[string]string) error {
	if path, name, found := s.secretOutsideItsEntry(); found {
		return secretElsewhere(path, name)
	}
	named := s.namedSecretValues()
	if len(named) == 0 || len(labels) == 0 {
		return nil
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, sec := range named {
			if strings.Contains(k, sec.value) {
				return secretElsewhere("labels (a key)", sec.name)
			}
			if strings.Contains(labels[k], sec.value) {
				return secretElsewhere("labels."+k, sec.name)
			}
		}
	}
	return nil
}

// secretElsewhere is the refusal of a secret's value outside its entry.
func secretElsewhere(path, secret string) error {
	return Errorf(ErrBadSpec,
		"%s: holds the value of secret %s; a secret's value may appear only in its own entry (pass it to the guest through the secret's environment variable, never in arguments, paths, env, labels or names, which are shown to others)",
		path, secret)
}

// RedactSecrets returns err with each of values replaced by Redacted in its
// text; nil stays nil, and an error whose text holds none of the values is
// returned as it is. A redacted error is an *Error of err's code: errors.Is
// still matches whatever err matched, but the original error, whose text
// holds a secret, can no longer be reached through errors.Unwrap or
// errors.As.
func RedactSecrets(err error, values []string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	scrubbed := text
	for _, v := range values {
		if len(v) >= MinSecretLen {
			scrubbed = strings.ReplaceAll(scrubbed, v, Redacted)
		}
	}
	if scrubbed == text {
		return err
	}
	return &Error{Code: AsError(err).Code, Msg: scrubbed, cause: &redactedCause{text: scrubbed, orig: err}}
}

// redactedCause stands in for an error whose text held a secret: it
// matches what the original matched under errors.Is, and shows only the
// scrubbed text.
type redactedCause struct {
	text string
	orig error
}

func (r *redactedCause) Error() string { return r.text }

// Is reports whether the original error matches target.
func (r *redactedCause) Is(target error) bool { return errors.Is(r.orig, target) }
