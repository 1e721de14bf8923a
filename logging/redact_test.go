package logging

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/messages"
)

// fakePEM returns a random, PEM-shaped private key: a BEGIN line, base64 body
// lines of 64 characters and an END line. Random so that no fixed string in
// this file could mask a leak.
func fakePEM(t testing.TB) (pem string, bodyLines []string) {
	t.Helper()
	raw := make([]byte, 600)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	for len(b64) > 64 {
		bodyLines = append(bodyLines, b64[:64])
		b64 = b64[64:]
	}
	bodyLines = append(bodyLines, b64)
	return "-----BEGIN PRIVATE KEY-----\n" + strings.Join(bodyLines, "\n") + "\n-----END PRIVATE KEY-----\n", bodyLines
}

// sentinel returns a random secret-looking token with a recognisable prefix.
func sentinel(t testing.TB, prefix string) string {
	t.Helper()
	raw := make([]byte, 12)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + base64.RawURLEncoding.EncodeToString(raw)
}

type stringer struct{ s string }

func (s stringer) String() string { return "stringer(" + s.s + ")" }

type nilStringer struct{ s string }

func (n *nilStringer) String() string { return n.s } // panics on a nil receiver

// specWithSecrets builds an InstanceSpec holding token and key as secrets.
func specWithSecrets(token, key string) messages.InstanceSpec {
	return messages.InstanceSpec{
		Version: 1, Engine: messages.EngineProcess, BoxID: "web",
		GuestEntrypoint: messages.Entrypoint{Executable: "/bin/sleep", Args: []string{"60"}},
		Secrets:         []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(token)}},
		NetworkConfig:   &messages.NetworkConfig{CAKeyPEM: messages.NewSecret(key)},
	}
}

// logEverywhere logs token and pem through every path a caller might use.
func logEverywhere(l *logrus.Logger, token, pem string, bodyLines []string) {
	spec := specWithSecrets(token, pem)
	start := messages.StartBox{ID: "web", Spec: spec}
	for _, level := range logrus.AllLevels[logrus.ErrorLevel:] { // error, warn, info, debug, trace
		l.Logf(level, "level %s: token=%s", level, token)
	}
	l.Infof("key follows:\n%s", pem)
	l.Infof("quoted key: %q", pem)
	l.Info("token in args ", token, " and ", []byte(token), " and ", []byte(pem))
	l.Infof("hex %x and %X-free", token, []byte(pem))
	for i, line := range bodyLines {
		l.Infof("key line %d: %s", i, line) // a key split across log lines
	}
	l.WithField("token", token).Info("string field")
	l.WithField("pem", pem).Info("string field, PEM")
	l.WithField("bytes", []byte(pem)).Info("[]byte field")
	l.WithField("strings", []string{"a", token}).Info("[]string field")
	l.WithError(errors.New("auth failed with " + token)).Error("error field")
	l.WithError(fmt.Errorf("wrapped: %w", errors.New(pem))).Error("wrapped error field")
	l.WithField("stringer", stringer{token}).Info("Stringer field")
	l.WithField("nil stringer", (*nilStringer)(nil)).Info("nil Stringer field")
	l.WithField("secret", messages.NewSecret(token)).Info("Secret field")
	l.WithField("secret ptr", &spec.Secrets[0].Value).Info("*Secret field")
	l.WithField("spec", spec).Info("spec field")
	l.WithField("spec ptr", &spec).Info("*spec field")
	l.WithField("start", start).Info("StartBox field")
	l.WithField("map", map[string]any{"k": token, "s": messages.NewSecret(pem)}).Info("map field")
	l.WithField("any", struct{ Note string }{"note " + token}).Info("struct field")
	l.Infof("spec %%v: %v", spec)
	l.Infof("spec %%+v: %+v", spec)
	l.Infof("spec %%#v: %#v", spec)
	l.Infof("spec ptr %%+v: %+v", &spec)
	l.Infof("start %%+v: %+v", start)
	l.Infof("secret %%s %%q %%x: %s %q %x", spec.Secrets[0].Value, spec.Secrets[0].Value, spec.Secrets[0].Value)
}

// assertNoLeak fails when out holds the token, the PEM, or any line of it.
func assertNoLeak(t *testing.T, out, token, pem string, bodyLines []string) {
	t.Helper()
	if strings.Contains(out, token) {
		t.Errorf("log output contains the token sentinel")
	}
	if strings.Contains(out, pem) {
		t.Errorf("log output contains the PEM sentinel")
	}
	for _, v := range []string{token, pem} {
		dec := fmt.Sprint([]byte(v))
		if strings.Contains(out, dec[1:len(dec)-1]) || strings.Contains(out, hex.EncodeToString([]byte(v))) {
			t.Errorf("log output contains a sentinel as decimal bytes or hex")
		}
	}
	for i, line := range bodyLines {
		if len(line) >= MinSecretLineLen && strings.Contains(out, line) {
			t.Errorf("log output contains line %d of the PEM body", i)
		}
	}
	// The base64 body joined without newlines (as %x or JSON would not
	// produce, but a careless concatenation could) is a different string;
	// check that 24-byte windows of it never appear either.
	body := strings.Join(bodyLines, "")
	for i := 0; i+24 <= len(body); i += 8 {
		if strings.Contains(out, body[i:i+24]) {
			t.Errorf("log output contains PEM body bytes %d..%d", i, i+24)
			break
		}
	}
	if !strings.Contains(out, messages.Redacted) {
		t.Errorf("log output has no %s marker: the test logged nothing?", messages.Redacted)
	}
}

func TestRegisteredSecretsNeverReachOutput(t *testing.T) {
	token := sentinel(t, "tok")
	pem, bodyLines := fakePEM(t)
	unregister := RegisterSecrets(token, pem)
	t.Cleanup(unregister)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			l, buf := newTestLogger(t, format)
			logEverywhere(l, token, pem, bodyLines)
			out := buf.String()
			assertNoLeak(t, out, token, pem, bodyLines)
			// The surrounding text survives.
			for _, want := range []string{"token=", "key line 3:", "auth failed with", "string field"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q: redaction removed too much", want)
				}
			}
			if format == "json" {
				if n := len(jsonLines(t, buf.Bytes())); n < 30 {
					t.Errorf("only %d JSON lines logged", n)
				}
			}
		})
	}
}

// Secrets held in messages.Secret never reach the output even when nobody
// registered them: fmt and the field conversion redact them by type.
func TestUnregisteredSecretTypesNeverReachOutput(t *testing.T) {
	token := sentinel(t, "unreg")
	pem, bodyLines := fakePEM(t)
	spec := specWithSecrets(token, pem)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			l, buf := newTestLogger(t, format)
			l.WithField("secret", messages.NewSecret(token)).Info("Secret field")
			l.WithField("secret ptr", &spec.Secrets[0].Value).Info("*Secret field")
			l.WithField("spec", spec).Info("spec field")
			l.WithField("spec ptr", &spec).Info("*spec field")
			l.WithField("start", messages.StartBox{ID: "web", Spec: spec}).Info("StartBox field")
			l.WithField("secrets", spec.Secrets).Info("[]SecretVar field")
			l.WithField("net", spec.NetworkConfig).Info("*NetworkConfig field")
			l.Infof("%v | %+v | %#v | %s", spec, spec, spec, spec.Secrets)
			assertNoLeak(t, buf.String(), token, pem, bodyLines)
		})
	}
}

func TestScrubOverlapsAndContainment(t *testing.T) {
	t.Cleanup(RegisterSecrets("abcd1234", "1234wxyz5678", "inner-secret", "xx-inner-secret-yy"))
	for in, want := range map[string]string{
		"a abcd1234wxyz5678 b":      "a [REDACTED] b", // overlapping
		"a xx-inner-secret-yy b":    "a [REDACTED] b", // one contains the other
		"a inner-secret b":          "a [REDACTED] b", // the contained one alone
		"abcd1234abcd1234":          "[REDACTED]",     // touching
		"abcd1234 and inner-secret": "[REDACTED] and [REDACTED]",
		"nothing here":              "nothing here",
		"abc":                       "abc",
	} {
		if got := Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegisterSecretsRefcountAndShortValues(t *testing.T) {
	const v = "refcounted-secret"
	if got := Scrub(v); got != v {
		t.Fatalf("test setup: %q is already registered", v)
	}
	u1 := RegisterSecrets(v)
	u2 := RegisterSecrets(v, "abc", "") // short values are ignored
	if got := Scrub("x abc y"); got != "x abc y" {
		t.Errorf("a 3-byte value was registered: %q", got)
	}
	u1()
	u1() // a second call must not drop the other registration
	if got := Scrub(v); got != messages.Redacted {
		t.Errorf("after one of two unregisters: Scrub = %q, want it still redacted", got)
	}
	if !ContainsSecret("PREFIX=" + v) {
		t.Error("ContainsSecret misses a registered value")
	}
	u2()
	if got := Scrub(v); got != v {
		t.Errorf("after both unregisters: Scrub = %q, want it untouched", got)
	}
	if ContainsSecret("PREFIX=" + v) {
		t.Error("ContainsSecret still reports an unregistered value")
	}
	RegisterSecrets()() // nothing to register: a no-op unregister
}

func TestScrubEscapedForms(t *testing.T) {
	secret := "pa\"ss<word>\twith\\escapes"
	t.Cleanup(RegisterSecrets(secret))
	asJSON, err := json.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%q", secret), string(asJSON), secret} {
		if got := Scrub(s); strings.Contains(got, "word") {
			t.Errorf("Scrub(%s) = %s: an escaped form leaked", s, got)
		}
	}
}

// Logging while other goroutines register and unregister secrets is race
// free, and a secret registered before a log call is always scrubbed.
func TestRedactionConcurrent(t *testing.T) {
	held := sentinel(t, "held")
	t.Cleanup(RegisterSecrets(held))
	l, buf := newTestLogger(t, "json")
	var mu sync.Mutex // bytes.Buffer is not safe for concurrent writes; logrus locks its Out, but be explicit
	l.SetOutput(lockedWriter{&mu, buf})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				u := RegisterSecrets(fmt.Sprintf("churn-%d-%d-value", g, i))
				u()
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.WithField("v", held).WithField("i", i).Info("msg " + held)
			}
		}()
	}
	wg.Wait()
	if strings.Contains(buf.String(), held) {
		t.Fatal("a registered secret leaked while the registry changed")
	}
	if n := strings.Count(buf.String(), "\n"); n != 800 {
		t.Errorf("logged %d lines, want 800", n)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  interface{ Write([]byte) (int, error) }
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func TestSanitizeKeepsPlainValues(t *testing.T) {
	type state string
	type count int
	for _, v := range []any{nil, true, 3, int64(-4), uint8(5), 2.5, count(7)} {
		if got := sanitize(nil, v); got != v {
			t.Errorf("sanitize(%#v) = %#v, want it unchanged", v, got)
		}
	}
	if got := sanitize(nil, state("running")); got != "running" {
		t.Errorf("named string became %#v", got)
	}
}

func BenchmarkHookNoSecrets(b *testing.B) {
	benchmarkHook(b, false)
}

func BenchmarkHookWithSecrets(b *testing.B) {
	benchmarkHook(b, true)
}

// BenchmarkHookBaseline is the benchmark loop without the hook, to subtract.
func BenchmarkHookBaseline(b *testing.B) {
	data := logrus.Fields{"box_id": "web-1", "pid": 1234, "gen": uint64(3), "engine": "process"}
	e := &logrus.Entry{Data: make(logrus.Fields, len(data))}
	b.ReportAllocs()
	for b.Loop() {
		for k, v := range data {
			e.Data[k] = v
		}
		e.Message = "box ready after 1.2ms, state running"
	}
}

func benchmarkHook(b *testing.B, withSecrets bool) {
	if withSecrets {
		pem, _ := fakePEM(b)
		b.Cleanup(RegisterSecrets(sentinel(b, "bench"), sentinel(b, "bench2"), pem))
	}
	h := NewRedactionHook()
	data := logrus.Fields{"box_id": "web-1", "pid": 1234, "gen": uint64(3), "engine": "process"}
	e := &logrus.Entry{Message: "box ready after 1.2ms, state running", Data: make(logrus.Fields, len(data))}
	b.ReportAllocs()
	for b.Loop() {
		for k, v := range data {
			e.Data[k] = v
		}
		e.Message = "box ready after 1.2ms, state running"
		_ = h.Fire(e)
	}
}
