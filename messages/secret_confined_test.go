package messages

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// TestValidateRefusesASecretOutsideItsEntry: wherever else a secret's value
// sits, the spec is refused, the field and the secret are named, and the
// value is not in the message.
func TestValidateRefusesASecretOutsideItsEntry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		field string
		set   func(*InstanceSpec)
	}{
		{"guest_entrypoint.args[1]", func(s *InstanceSpec) { s.GuestEntrypoint.Args = []string{"-c", "x" + sentinel} }},
		{"guest_entrypoint.executable", func(s *InstanceSpec) { s.GuestEntrypoint.Executable = "/nonexistent/" + sentinel }},
		{"guest_entrypoint.work_dir", func(s *InstanceSpec) { s.GuestEntrypoint.WorkDir = "rel/" + sentinel }},
		{"guest_entrypoint.env[0]", func(s *InstanceSpec) { s.GuestEntrypoint.Env = []string{"COPY=" + sentinel} }},
		{"box_id", func(s *InstanceSpec) { s.BoxID = sentinel }},
		{"ready_transport", func(s *InstanceSpec) { s.ReadyTransport = "/tmp/" + sentinel }},
		{"engine", func(s *InstanceSpec) { s.Engine = EngineKind("x/" + sentinel) }},
	}
	for _, c := range cases {
		spec := sampleSpec()
		spec.Secrets = []SecretVar{{Name: "TOKEN", Value: NewSecret(sentinel)}}
		c.set(&spec)
		err := spec.Validate()
		if !errors.Is(err, ErrBadSpec) {
			t.Fatalf("%s: want ErrBadSpec, got %v", c.field, err)
		}
		msg := err.Error()
		if strings.Contains(msg, sentinel) {
			t.Fatalf("%s: the refusal quotes the secret: %q", c.field, msg)
		}
		if !strings.Contains(msg, c.field+":") || !strings.Contains(msg, "secret TOKEN") {
			t.Fatalf("%s: the refusal does not name the field and the secret: %q", c.field, msg)
		}
	}
}

func TestCheckSecretsConfinedCoversTheWholeRequest(t *testing.T) {
	t.Parallel()
	base := func() StartBox {
		spec := sampleSpec()
		spec.Secrets = []SecretVar{{Name: "TOKEN", Value: NewSecret(sentinel)}}
		return StartBox{ID: "web", Spec: spec, Labels: map[string]string{"team": "infra"}}
	}
	ok := base()
	if err := ok.CheckSecretsConfined(); err != nil {
		t.Fatalf("a request without the value elsewhere: %v", err)
	}
	cases := map[string]func(*StartBox){
		"labels.x":       func(r *StartBox) { r.Labels = map[string]string{"x": sentinel} },
		"labels (a key)": func(r *StartBox) { r.Labels = map[string]string{"k" + sentinel: "v"} },
		"health_check":   func(r *StartBox) { r.HealthCheck = &HealthCheck{TCP: sentinel} },
		"ready_when":     func(r *StartBox) { r.ReadyWhen = ReadyCondition("x" + sentinel) },
		"spec.secrets[1].name": func(r *StartBox) {
			r.Spec.Secrets = append(r.Spec.Secrets, SecretVar{Name: sentinel, Value: NewSecret("other-value")})
		},
		"spec.guest_entrypoint.args[0]": func(r *StartBox) { r.Spec.GuestEntrypoint.Args = []string{"Ab\xffcd" + sentinel} },
	}
	for want, set := range cases {
		r := base()
		set(&r)
		err := r.CheckSecretsConfined()
		if !errors.Is(err, ErrBadSpec) || strings.Contains(err.Error(), sentinel) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v; want ErrBadSpec naming %s without the value", want, err, want)
		}
	}
	var none StartBox
	none.Labels = map[string]string{"x": sentinel}
	if err := none.CheckSecretsConfined(); err != nil {
		t.Fatalf("a request without secrets has nothing to confine: %v", err)
	}
}

// TestFieldNamesAreNotSearched: a secret whose value is a word that names a
// field ("console", "version") is not refused because of the name.
func TestFieldNamesAreNotSearched(t *testing.T) {
	t.Parallel()
	spec := sampleSpec()
	spec.Secrets = []SecretVar{{Name: "WORD", Value: NewSecret("console")}, {Name: "OTHER", Value: NewSecret("version")}}
	r := StartBox{ID: "web", Spec: spec}
	if err := r.CheckSecretsConfined(); err != nil {
		t.Fatalf("field names were searched: %v", err)
	}
}

// TestInvalidUTF8CannotHideAValue: the check compares raw strings.
func TestInvalidUTF8CannotHideAValue(t *testing.T) {
	t.Parallel()
	value := "Ab\xffcdEFGH9"
	spec := sampleSpec()
	spec.Secrets = []SecretVar{{Name: "TOKEN", Value: NewSecret(value)}}
	spec.GuestEntrypoint.Args = []string{value}
	if err := spec.Validate(); !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "args[0]") {
		t.Fatalf("a value with invalid UTF-8 in args: %v; want it refused", err)
	}
}

// TestALineOfAMultiLineSecretIsConfinedToo: one long line of a PEM key is
// as secret as the key (the log redactor hides such lines).
func TestALineOfAMultiLineSecretIsConfinedToo(t *testing.T) {
	t.Parallel()
	line := "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
	spec := sampleSpec()
	spec.Secrets = []SecretVar{{Name: "KEY", Value: NewSecret("-----BEGIN PRIVATE KEY-----\n" + line + "\n-----END PRIVATE KEY-----\n")}}
	spec.GuestEntrypoint.Args = []string{"-c", "sleep 100 " + line}
	if err := spec.Validate(); !errors.Is(err, ErrBadSpec) || strings.Contains(err.Error(), line) {
		t.Fatalf("a line of a multi-line secret in args: %v; want it refused", err)
	}
}

func TestScrubSecretsHidesTheLongestFirst(t *testing.T) {
	t.Parallel()
	got := ScrubSecrets("x PREFIXabcd1234SUFFIX y abcd1234", []string{"abcd1234", "PREFIXabcd1234SUFFIX"})
	if want := "x " + Redacted + " y " + Redacted; got != want {
		t.Fatalf("ScrubSecrets = %q, want %q", got, want)
	}
}

func TestValidateRefusesNULInPaths(t *testing.T) {
	t.Parallel()
	spec := sampleSpec()
	spec.Transport = "/tmp/a\x00b"
	if err := spec.Validate(); !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "transport: contains NUL") {
		t.Fatalf("want a NUL refusal, got %v", err)
	}
}

func TestRedactSecretsKeepsTheCodeAndTheChain(t *testing.T) {
	t.Parallel()
	cause := &fs.PathError{Op: "open", Path: "/x/" + sentinel, Err: fs.ErrNotExist}
	err := Errorf(ErrStartFailed, "ready socket: %w", cause)
	got := RedactSecrets(err, []string{sentinel})
	if strings.Contains(got.Error(), sentinel) || !strings.Contains(got.Error(), Redacted) {
		t.Fatalf("not scrubbed: %q", got)
	}
	if !errors.Is(got, ErrStartFailed) || !errors.Is(got, fs.ErrNotExist) {
		t.Fatalf("the chain is lost: %v", got)
	}
	var pe *fs.PathError
	if errors.As(got, &pe) {
		t.Fatalf("the original, which quotes the secret, is still reachable: %v", pe)
	}
	for e := errors.Unwrap(got); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(fmt.Sprint(e), sentinel) {
			t.Fatalf("an unwrapped error quotes the secret: %q", e)
		}
	}
	plain := errors.New("nothing secret")
	if RedactSecrets(plain, []string{sentinel}) != plain || RedactSecrets(nil, []string{sentinel}) != nil {
		t.Fatal("an error without a secret must be returned as it is, nil as nil")
	}
}

func TestScrubSecretsHidesEachLongLineOfAMultiLineSecret(t *testing.T) {
	t.Parallel()
	line := "MIIBVwIBADANBgkqhkiG9w0BAQEFAASC"
	pem := "-----BEGIN KEY-----\n" + line + "\n-----END KEY-----\n"
	if got := ScrubSecrets(`restart: "`+line+`" is not no`, []string{pem}); strings.Contains(got, line) {
		t.Fatalf("a line of the key was left: %q", got)
	}
}
