package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// Probe runs check once against t and returns the result. check must be
// valid (Supported); its zero settings take the defaults. The probe is
// bounded by the check's timeout: a probe that takes longer fails ("timed
// out after ..."), and an exec probe's process group is killed first.
//
// A cancelled ctx (a box removed, a scheduler closed) ends the probe early
// with an HealthError result, which is not a verdict on the box.
//
// The result's Output is bounded by messages.MaxHealthOutput and holds none
// of the box's secret values: each is replaced by [REDACTED], and the text
// also goes through logging.Scrub, which catches the quoted and encoded
// forms of every secret registered with package logging (the box actor
// registers its box's). Probe logs nothing.
func Probe(ctx context.Context, check *messages.HealthCheck, t Target) messages.HealthResult {
	c := check.WithDefaults()
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	var o outcome
	switch c.Kind() {
	case messages.HealthExec:
		o = probeExec(pctx, &c, t)
	case messages.HealthTCP:
		o = probeTCP(pctx, &c, t)
	case messages.HealthHTTP:
		o = probeHTTP(pctx, &c, t)
	case messages.HealthUnix:
		o = probeUnix(pctx, &c)
	default:
		o = errored(errors.New("the check names no probe (or several)"))
	}
	if o.outcome != messages.HealthPass && ctx.Err() != nil {
		// Our caller gave up, not the box: no verdict.
		o = outcome{outcome: messages.HealthError, exitCode: o.exitCode, reason: "cancelled", output: o.output}
	} else if o.outcome == messages.HealthFail && o.timedOut {
		o.reason = fmt.Sprintf("timed out after %v", c.Timeout)
	}
	return messages.HealthResult{
		Outcome:  o.outcome,
		Start:    start,
		End:      time.Now(),
		ExitCode: o.exitCode,
		Reason:   scrub(o.reason, t.Spec, maxReason),
		Output:   scrub(string(o.output), t.Spec, messages.MaxHealthOutput),
	}
}

// maxReason bounds a result's reason: it may quote an error from the box's
// side (a server's status line).
const maxReason = 512

// outcome is what a probe found, before Probe stamps and scrubs it.
type outcome struct {
	outcome  messages.HealthOutcome
	exitCode int
	reason   string
	output   []byte // at most captureLimit bytes
	timedOut bool   // the probe's context expired: Probe writes the reason
}

func passed(output []byte) outcome {
	return outcome{outcome: messages.HealthPass, output: output}
}

func failed(format string, args ...any) outcome {
	return outcome{outcome: messages.HealthFail, reason: fmt.Sprintf(format, args...)}
}

func errored(err error) outcome {
	return outcome{outcome: messages.HealthError, reason: err.Error(), exitCode: -1}
}

// judged turns a probe's error into an outcome: a timeout or an answer
// from the box's side is a failure; a shortage on the supervisor's side
// (file descriptors, memory, threads) is an error, which is not a verdict
// on the box.
func judged(ctx context.Context, err error) outcome {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return outcome{outcome: messages.HealthFail, timedOut: true, exitCode: -1}
	}
	if supervisorShortage(err) {
		return errored(err)
	}
	return failed("%v", err)
}

// supervisorShortage reports whether err is the supervisor running short
// of something, rather than the box misbehaving.
func supervisorShortage(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOBUFS, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// captureLimit is how much output a probe keeps before scrubbing: the
// bound plus the longest secret, so that a secret straddling the bound is
// still whole when it is replaced, and cut only after.
func captureLimit(spec *messages.InstanceSpec) int {
	longest := 0
	for _, v := range secretValues(spec) {
		longest = max(longest, len(v))
	}
	return messages.MaxHealthOutput + longest
}

// secretValues lists the spec's secret values.
func secretValues(spec *messages.InstanceSpec) []string {
	if spec == nil {
		return nil
	}
	var out []string
	for _, s := range spec.Secrets {
		if v := s.Value.Reveal(); v != "" {
			out = append(out, v)
		}
	}
	if spec.NetworkConfig != nil {
		if v := spec.NetworkConfig.CAKeyPEM.Reveal(); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// scrub replaces the spec's secret values (and, through logging.Scrub,
// every registered secret in its encoded forms) in text, then cuts it to
// limit bytes at a character boundary, as valid UTF-8.
func scrub(text string, spec *messages.InstanceSpec, limit int) string {
	if text == "" {
		return ""
	}
	text = messages.ScrubSecrets(text, secretValues(spec)) // the longest first
	text = strings.ToValidUTF8(logging.Scrub(text), "\uFFFD")
	if len(text) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	return text
}
