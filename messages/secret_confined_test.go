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

func TestCheckSecretsConfinedCoversLabels(t *testing.T) {
	t.Parallel()
	spec := sampleSpec()
	spec.Secrets = []SecretVar{{Name: "TOKEN", Value: NewSecret(sentinel)}}
	if err := spec.CheckSecretsConfined(map[string]string{"team": "infra"}); err != nil {
		t.Fatalf("a spec without the value elsewhere: %v", err)
	}
	for _, labels := range []map[string]string{{"x": sentinel}, {"k" + sentinel: "v"}} {
		err := spec.CheckSecretsConfined(labels)
		if !errors.Is(err, ErrBadSpec) || strings.Contains(err.Error(), sentinel) {
			t.Fatalf("labels %v: want ErrBadSpec without the value, got %v", labels, err)
		}
	}
	var none InstanceSpec
	if err := none.CheckSecretsConfined(map[string]string{"x": sentinel}); err != nil {
		t.Fatalf("a spec without secrets has nothing to confine: %v", err)
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
