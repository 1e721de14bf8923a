package shimproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// GuestEvent is one report of a shim spawned with restart_in_place, on its
// restart line (docs/SHIM-PROTOCOL.md §16). Exactly one field is set.
type GuestEvent struct {
	// Exit: the guest ended on its own, and the shim waits for AnswerGuest
	// (restart it in place, or end).
	Exit *messages.ExitRecord
	// StartedPID: the shim started its guest again, in place.
	StartedPID int
}

// Answers on the restart line.
const (
	answerRestart = 'R'
	answerEnd     = 'E'
)

// maxGuestReport bounds one report line.
const maxGuestReport = 4096

// restartWriteTimeout bounds an answer's write (one byte into a socket that
// the shim drains: it never waits in practice).
const restartWriteTimeout = 5 * time.Second

// restartLine is the supervisor's end of fd 3 after the ready byte, for a
// shim spawned with restart_in_place.
type restartLine struct {
	f *os.File // non-blocking, in the netpoller
	r *bufio.Reader
}

func (l *restartLine) close() error { return l.f.Close() }

// keepRestartLine keeps the ready socket, after the ready byte, as the
// restart line.
func (h *Handle) keepRestartLine() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.readyR == nil {
		return
	}
	_ = h.readyR.SetReadDeadline(time.Time{})
	h.line = &restartLine{f: h.readyR, r: bufio.NewReaderSize(h.readyR, maxGuestReport)}
	h.readyR = nil
}

// RestartsInPlace reports whether the shim was spawned with restart_in_place
// and its restart line is open: it asks before it ends after its guest ended
// on its own (NextGuestEvent).
func (h *Handle) RestartsInPlace() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.line != nil && !h.closed
}

// NextGuestEvent waits, parked in the netpoller, for the shim's next report
// on its restart line. It returns io.EOF when there is no line (the shim was
// not spawned with restart_in_place, or was adopted) or the line ended: the
// shim exited, or the handle was closed. A malformed report is an error,
// and the line is closed: the shim's next question then finds nobody to
// answer it, and it ends as it would without restart_in_place. Only one
// goroutine may call it at a time.
func (h *Handle) NextGuestEvent() (GuestEvent, error) {
	h.mu.Lock()
	l := h.line
	h.mu.Unlock()
	if l == nil {
		return GuestEvent{}, io.EOF
	}
	raw, err := l.r.ReadSlice('\n')
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed):
		return GuestEvent{}, io.EOF
	case errors.Is(err, bufio.ErrBufferFull):
		err = fmt.Errorf("a report longer than %d bytes", maxGuestReport)
	}
	var ev GuestEvent
	if err == nil {
		ev, err = h.parseGuestEvent(raw)
	}
	if err != nil {
		h.dropRestartLine()
		return GuestEvent{}, fmt.Errorf("box %s: restart line: %w", h.box.ID, err)
	}
	return ev, nil
}

// parseGuestEvent decodes one report; the exit's reason is the shim's text
// and is scrubbed of the spec's secrets.
func (h *Handle) parseGuestEvent(raw []byte) (GuestEvent, error) {
	var rep struct {
		GuestExit    *messages.ExitRecord `json:"guest_exit"`
		GuestStarted *struct {
			PID int `json:"pid"`
		} `json:"guest_started"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return GuestEvent{}, errors.New("a malformed report")
	}
	switch {
	case rep.GuestExit != nil && rep.GuestStarted == nil:
		exit := *rep.GuestExit
		exit.Reason = redactSecrets(exit.Reason, h.secrets)
		exit.Source = messages.SourceShim
		return GuestEvent{Exit: &exit}, nil
	case rep.GuestStarted != nil && rep.GuestExit == nil && rep.GuestStarted.PID > 0:
		return GuestEvent{StartedPID: rep.GuestStarted.PID}, nil
	}
	return GuestEvent{}, errors.New("a report that is neither guest_exit nor guest_started")
}

// AnswerGuest answers the shim's question after a GuestEvent with Exit:
// restart the guest in place, or end. Without a line (closed, or never
// there) it does nothing: the shim then ends by itself.
func (h *Handle) AnswerGuest(restart bool) error {
	h.mu.Lock()
	l := h.line
	h.mu.Unlock()
	if l == nil {
		return nil
	}
	b := []byte{answerEnd}
	if restart {
		b[0] = answerRestart
	}
	_ = l.f.SetWriteDeadline(time.Now().Add(restartWriteTimeout))
	if _, err := l.f.Write(b); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("box %s: answering the shim: %w", h.box.ID, err)
	}
	return nil
}

// dropRestartLine closes the restart line: the shim ends at its next
// question (and a question it waits on now is answered by EOF).
func (h *Handle) dropRestartLine() {
	h.mu.Lock()
	l := h.line
	h.line = nil
	h.mu.Unlock()
	if l != nil {
		_ = l.close()
	}
}
