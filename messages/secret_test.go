package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

const sentinel = "SENTINEL-7f3a9c"

// TestSecretNeverPrints covers every way a value reaches text except JSON.
func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret(sentinel)
	spec := sampleSpec()
	spec.Secrets = []SecretVar{{Name: "TOKEN", Value: s}}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s), fmt.Sprintf(verb, spec), fmt.Sprintf(verb, &spec))
	}
	out = append(out, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(spec))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "secret", s)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "secret", s)
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, sentinel) {
			t.Fatalf("secret leaked through formatting: %q", o)
		}
	}
	if !strings.Contains(fmt.Sprint(s), Redacted) {
		t.Fatalf("want %s in %q", Redacted, fmt.Sprint(s))
	}
	if s.Reveal() != sentinel {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
}

// TestSecretKeepsValueInJSON: the shim receives the value through JSON.
func TestSecretKeepsValueInJSON(t *testing.T) {
	data, err := json.Marshal(SecretVar{Name: "TOKEN", Value: NewSecret(sentinel)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(sentinel)) {
		t.Fatalf("JSON lost the value: %s", data)
	}
	var back SecretVar
	if err := json.Unmarshal(data, &back); err != nil || back.Value.Reveal() != sentinel {
		t.Fatalf("decode: %v %q", err, back.Value.Reveal())
	}
}

func TestSecretValuesListsEverySecret(t *testing.T) {
	spec := sampleSpec()
	got := spec.SecretValues()
	if len(got) != 2 || got[0] != "s3cret-value" || !strings.Contains(got[1], "PRIVATE KEY") {
		t.Fatalf("SecretValues = %q", got)
	}
}
