package wire

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestEnvelopeNeverPrintsItsPayload covers fmt (every verb protoactor or a
// logger might use) and slog (text and JSON), the way protoactor logs dead
// letters.
func TestEnvelopeNeverPrintsItsPayload(t *testing.T) {
	t.Parallel()
	env, err := Encode(samples()[0].(*messages.StartBox))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env.Payload, []byte(secretValue)) {
		t.Fatal("the sample does not carry the secret; the test proves nothing")
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		out = append(out, fmt.Sprintf(verb, env))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("[DeadLetter]", slog.Any("message", env))
		out = append(out, buf.String())
	}
	for _, s := range out {
		if strings.Contains(s, secretValue) || strings.Contains(s, fmt.Sprintf("%x", secretValue)) {
			t.Fatalf("payload printed: %s", s)
		}
		if !strings.Contains(s, "StartBox") {
			t.Fatalf("type missing from %q", s)
		}
	}
	var nilEnv *Envelope
	if s := fmt.Sprint(nilEnv); !strings.Contains(s, "nil") {
		t.Fatalf("nil envelope printed %q", s)
	}
}

// TestDecodeErrorsDoNotQuoteThePayload: a malformed StartBox must not put a
// piece of its secret into the error text.
func TestDecodeErrorsDoNotQuoteThePayload(t *testing.T) {
	t.Parallel()
	payloads := []string{
		`{"id":"web","spec":{"secrets":[{"name":"T","value":"` + secretValue + `"}]},"created_at":"` + secretValue + `"}`,
		`{"id":"web","spec":{"secrets":[{"name":"T","value":` + secretValue + `}]}}`,
		`{"id":"web","stop_timeout":"` + secretValue + `"}`,
	}
	for _, p := range payloads {
		_, err := Decode(&Envelope{Type: "StartBox", Version: Version, Payload: []byte(p)})
		if err == nil {
			t.Fatalf("accepted %s", p)
		}
		if strings.Contains(err.Error(), "SENTINEL") || strings.Contains(err.Error(), "4b1d") {
			t.Fatalf("error quotes the payload: %v", err)
		}
	}
}
