package testutil

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakGrace and leakPollInterval bound LeaksAfterGrace.
const (
	leakGrace        = 3 * time.Second
	leakPollInterval = 50 * time.Millisecond
)

// LeaksAfterGrace runs goleak.Find until it passes or 3 s have passed, and
// returns its last error (goleak alone gives up after about 0.4 s):
// protoactor's dead-letter throttle, started by a late message to an actor
// that is gone, sleeps DeadLetterThrottleInterval (1 s) and then ends by
// itself, so waiting it out is enough and no goroutine needs ignoring.
func LeaksAfterGrace(opts ...goleak.Option) error {
	deadline := time.Now().Add(leakGrace)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(leakPollInterval)
	}
}

// Settling wraps a testing.M for goleak.VerifyTestMain: after the tests, it
// gives goroutines on their way out (protoactor's dead-letter throttle) up
// to 3 s to end, so that VerifyTestMain's own check sees only real leaks.
func Settling(m *testing.M) goleak.TestingM { return settlingM{m} }

type settlingM struct{ m *testing.M }

func (s settlingM) Run() int {
	code := s.m.Run()
	_ = LeaksAfterGrace()
	return code
}
