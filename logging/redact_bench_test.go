package logging

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

// Redaction costs, as `go test -bench Redact ./logging/` reports them. The
// targets (issue: registering 10,000 secrets in under 1 s in total, and
// scrubbing a 200-byte line with 10,000 registered in under 5 µs) are read
// from these figures, not asserted by a timed test.

// benchSecrets returns n distinct random 32-character tokens.
func benchSecrets(b *testing.B, n int) []string {
	b.Helper()
	out := make([]string, n)
	buf := make([]byte, 16)
	for i := range out {
		_, _ = rand.Read(buf)
		out[i] = "tok_" + hex.EncodeToString(buf)[:28]
	}
	return out
}

// BenchmarkRedactRegister10000 registers 10,000 secrets, one per box, and
// releases them; one op is all 10,000 registrations (the release is not
// timed).
func BenchmarkRedactRegister10000(b *testing.B) {
	secrets := benchSecrets(b, 10000)
	regs := make([]*Registration, len(secrets))
	b.ReportAllocs()
	for b.Loop() {
		for i, s := range secrets {
			regs[i] = Register(s)
		}
		b.StopTimer()
		for _, r := range regs {
			r.Release()
		}
		b.StartTimer()
	}
}

// benchLine is a 200-byte log line without a secret.
var benchLine = func() string {
	s := `time="2026-11-30T18:15:00.230498073Z" level=info msg="box ready" box_id=web-0042 pid=22426 gen=3 engine=process transport=unix took=1.203ms socket=/tmp/boxsup-0/3f2a/boxsup.sock`
	for len(s) < 200 {
		s += "."
	}
	return s[:200]
}()

func benchScrub(b *testing.B, line string, secrets []string, check func(scrubbed string)) {
	regs := make([]*Registration, len(secrets))
	for i, s := range secrets {
		regs[i] = Register(s)
	}
	defer func() {
		for _, r := range regs {
			r.Release()
		}
	}()
	// The first scan fills the lazily computed links, as the first log line
	// after a registration does.
	if got := Scrub(line); check != nil {
		check(got)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		Scrub(line)
	}
}

// BenchmarkRedactScrub200Clean scrubs a 200-byte line holding no secret
// with 10,000 secrets registered.
func BenchmarkRedactScrub200Clean(b *testing.B) {
	benchScrub(b, benchLine, benchSecrets(b, 10000), func(got string) {
		if got != benchLine {
			b.Fatalf("a clean line changed: %s", got)
		}
	})
}

// BenchmarkRedactScrub200Secret scrubs a 200-byte line holding one of the
// 10,000 registered secrets.
func BenchmarkRedactScrub200Secret(b *testing.B) {
	secrets := benchSecrets(b, 10000)
	line := benchLine[:100] + secrets[4321] + benchLine[100+len(secrets[4321]):]
	if len(line) != 200 {
		b.Fatalf("line is %d bytes", len(line))
	}
	benchScrub(b, line, secrets, func(got string) {
		if strings.Contains(got, secrets[4321]) || !strings.Contains(got, "[REDACTED]") {
			b.Fatalf("the secret survived: %s", got)
		}
	})
}

// BenchmarkRedactScrub200None is the floor: a 200-byte line with nothing
// registered.
func BenchmarkRedactScrub200None(b *testing.B) {
	benchScrub(b, benchLine, nil, nil)
}

// BenchmarkRedactScrub200AfterRegister scrubs a line right after a
// registration, when the links it needs are recomputed.
func BenchmarkRedactScrub200AfterRegister(b *testing.B) {
	secrets := benchSecrets(b, 10000)
	for _, s := range secrets {
		defer Register(s).Release()
	}
	extra := benchSecrets(b, 1)[0]
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		Register(extra).Release() // two epochs: every cached link is stale
		Scrub(benchLine)
	}
}
