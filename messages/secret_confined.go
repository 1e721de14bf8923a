package messages

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// A secret's value may appear in exactly one place of a start request: its
// own entry. Anywhere else it would be shown or shared where secrets never
// go: a guest argument is in /proc/PID/cmdline for every user to read; the
// executable, working directory, env, paths, a health check, a label or a
// secret's name are printed by inspect, ps and error messages. So a request
// in which any other text holds a secret's value, or one long line of a
// multi-line secret (the forms the log redactor hides), is refused, naming
// the field and the secret but never the value, before anything else is
// checked, so that no later error message can quote such a field.

// MinSecretLineLen is the shortest single line of a multi-line secret (a
// PEM key) that is treated as the secret itself: the log redactor hides
// such lines, and a request may not hold one elsewhere.
const MinSecretLineLen = 16

// SecretLines returns the lines of a multi-line secret value (a PEM key)
// that are as secret as the value itself: each one, trimmed, of
// MinSecretLineLen bytes or more. A single-line value has none.
func SecretLines(value string) []string {
	if !strings.Contains(value, "\n") {
		return nil
	}
	var out []string
	for _, line := range strings.Split(value, "\n") {
		if line = strings.TrimSpace(line); len(line) >= MinSecretLineLen {
			out = append(out, line)
		}
	}
	return out
}

// secretForm is one text that must not appear outside the secrets: a value,
// or a long line of a multi-line value, with the secret's name.
type secretForm struct{ name, text string }

// secretForms lists the forms of the spec's secret values.
func (s *InstanceSpec) secretForms() []secretForm {
	var out []secretForm
	add := func(name, value string) {
		if value == "" {
			return
		}
		out = append(out, secretForm{name, value})
		for _, line := range SecretLines(value) {
			out = append(out, secretForm{name, line})
		}
	}
	for _, sv := range s.Secrets {
		add(sv.Name, sv.Value.Reveal())
	}
	if s.NetworkConfig != nil {
		add("network_config.ca_key_pem", s.NetworkConfig.CAKeyPEM.Reveal())
	}
	return out
}

// CheckSecretsConfined refuses, as ErrBadSpec, a start request in which a
// text other than a secret's value holds one of the spec's secret values (or
// a long line of a multi-line one): any field of the spec, a secret's name,
// and everything else the request carries (labels, health check, ready
// condition, placement). The message names the field and the secret, never
// the value. Validate makes the spec's part of this check first of all.
func (r *StartBox) CheckSecretsConfined() error {
	forms := r.Spec.secretForms()
	if len(forms) == 0 {
		return nil
	}
	req := *r
	req.Spec = r.Spec.withoutSupervisorPaths()
	if path, name, found := findSecret(reflect.ValueOf(&req).Elem(), "", forms); found {
		return secretElsewhere(path, name)
	}
	return nil
}

// withoutSupervisorPaths returns a copy of the spec without the paths the
// supervisor fills in from the box's directory (console_output, exit_file;
// a caller may not set them): they are not the caller's text, and a word
// of the home's path that happens to be a secret's value must not make
// every start fail in the shim, which checks the spec as it receives it.
func (s *InstanceSpec) withoutSupervisorPaths() InstanceSpec {
	c := *s
	c.ConsoleOutput, c.ExitFile = "", ""
	return c
}

// CheckLabelsConfined refuses labels (keys or values) that hold one of the
// spec's secret values: an update's labels are checked against the box's
// spec this way.
func (s *InstanceSpec) CheckLabelsConfined(labels map[string]string) error {
	forms := s.secretForms()
	if len(forms) == 0 || len(labels) == 0 {
		return nil
	}
	if path, name, found := findSecret(reflect.ValueOf(labels), "labels", forms); found {
		return secretElsewhere(path, name)
	}
	return nil
}

// secretOutsideItsEntry is CheckSecretsConfined for the spec alone.
func (s *InstanceSpec) secretOutsideItsEntry() (path, secret string, found bool) {
	forms := s.secretForms()
	if len(forms) == 0 {
		return "", "", false
	}
	c := s.withoutSupervisorPaths()
	return findSecret(reflect.ValueOf(&c).Elem(), "", forms)
}

// secretType is skipped by findSecret: a Secret's value is where the value
// belongs.
var secretType = reflect.TypeOf(Secret{})

// findSecret walks v (structs by their JSON names, slices, maps with their
// keys, pointers and interfaces) in a fixed order, and returns the path of
// the first string that contains one of the forms, with the secret's name.
// It compares the raw strings, so invalid UTF-8 cannot hide a value.
func findSecret(v reflect.Value, path string, forms []secretForm) (string, string, bool) {
	switch v.Kind() {
	case reflect.String:
		for _, f := range forms {
			if strings.Contains(v.String(), f.text) {
				return path, f.name, true
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return findSecret(v.Elem(), path, forms)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			return "", "", false
		}
		for i := range v.NumField() {
			field := v.Type().Field(i)
			if !field.IsExported() {
				continue
			}
			if p, name, ok := findSecret(v.Field(i), join(path, jsonName(field)), forms); ok {
				return p, name, true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", "", false // bytes, not text
		}
		for i := range v.Len() {
			if p, name, ok := findSecret(v.Index(i), path+"["+strconv.Itoa(i)+"]", forms); ok {
				return p, name, true
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			if _, name, ok := findSecret(k, path, forms); ok {
				return path + " (a key)", name, true
			}
			if p, name, ok := findSecret(v.MapIndex(k), path+"."+fmt.Sprint(k), forms); ok {
				return p, name, true
			}
		}
	}
	return "", "", false
}

// jsonName is a field's name in JSON.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return f.Name
	case "":
		if f.Anonymous {
			return ""
		}
		return f.Name
	}
	return name
}

// join appends a field's name to a path.
func join(path, name string) string {
	switch {
	case name == "":
		return path
	case path == "":
		return name
	}
	return path + "." + name
}

// secretElsewhere is the refusal of a secret's value outside its entry.
func secretElsewhere(path, secret string) error {
	return Errorf(ErrBadSpec,
		"%s: holds the value of secret %s; a secret's value may appear only in its own entry (pass it to the guest through the secret's environment variable, never in arguments, paths, env, labels, checks or names, which are shown to others)",
		path, secret)
}

// ScrubSecrets returns text with each of values (those at least
// MinSecretLen bytes long), and each line of MinSecretLineLen bytes or more
// of a multi-line value (a PEM key quoted line by line), replaced by
// Redacted, the longest first: a secret that contains a shorter one is
// hidden whole, not around it.
func ScrubSecrets(text string, values []string) string {
	ordered := slices.Clone(values)
	for _, v := range values {
		ordered = append(ordered, SecretLines(v)...)
	}
	slices.SortFunc(ordered, func(a, b string) int { return len(b) - len(a) })
	for _, v := range ordered {
		if len(v) >= MinSecretLen {
			text = strings.ReplaceAll(text, v, Redacted)
		}
	}
	return text
}

// RedactSecrets returns err with each of values replaced by Redacted in its
// text (ScrubSecrets); nil stays nil, and an error whose text holds none of
// the values is returned as it is. A redacted error is an *Error of err's
// code: errors.Is still matches whatever err matched, but the original
// error, whose text holds a secret, can no longer be reached through
// errors.Unwrap or errors.As.
func RedactSecrets(err error, values []string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	scrubbed := ScrubSecrets(text, values)
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
