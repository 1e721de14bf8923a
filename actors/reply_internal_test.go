package actors

import (
	"errors"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
)

// TestReplyValueOfADeadLetter: a dead letter is ErrShuttingDown, and its text
// names the target only when protoactor gives one (a trial saw "no actor to
// answer (<nil>)").
func TestReplyValueOfADeadLetter(t *testing.T) {
	t.Parallel()
	_, err := replyValue(&actor.DeadLetterResponse{})
	if !errors.Is(err, messages.ErrShuttingDown) || err.Error() != "supervisor is shutting down: no actor to answer" {
		t.Errorf("dead letter without a target: %v", err)
	}
	_, err = replyValue(&actor.DeadLetterResponse{Target: actor.NewPID("nonhost", "box-web")})
	if !errors.Is(err, messages.ErrShuttingDown) || err.Error() == "supervisor is shutting down: no actor to answer" {
		t.Errorf("dead letter with a target: %v", err)
	}
}
