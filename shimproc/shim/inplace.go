package shim

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// The supervisor's answers on the restart line (docs/SHIM-PROTOCOL.md §16).
const (
	answerRestart = 'R' // start the guest again, in place
	answerEnd     = 'E' // end as without restart_in_place
)

// restartWriteTimeout bounds one line to the supervisor: a supervisor that
// has not read for this long is not answering either, and the shim ends.
const restartWriteTimeout = 10 * time.Second

// restartLine is fd 3 of a shim whose spec sets restart_in_place, kept
// after the ready byte: when the guest ends on its own, the shim writes the
// exit there and waits for the supervisor's answer. The supervisor decides
// (its restart policy, its records); the shim never restarts a guest on its
// own. Any failure of the line (EOF, an error, a closed end) means "end",
// now and for every later exit: a supervisor that adopted the shim later
// does not hold the line, and the shim then ends as it would without it.
type restartLine struct {
	f       *os.File      // the socket, non-blocking, in the netpoller
	answers chan byte     // the supervisor's answers; closed at EOF or an error
	quit    chan struct{} // closed by close: the reader stops passing answers on
	done    chan struct{}

	mu     sync.Mutex
	broken bool
}

// openRestartLine starts reading answers from f (the socket at fd 3).
func openRestartLine(f *os.File) *restartLine {
	l := &restartLine{f: f, answers: make(chan byte, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go l.read()
	return l
}

// read passes every byte the supervisor writes to answers, in order, and
// closes it when the line ends. The goroutine parks in the netpoller.
func (l *restartLine) read() {
	defer close(l.done)
	defer close(l.answers)
	var b [1]byte
	for {
		n, err := l.f.Read(b[:])
		if n == 1 {
			select {
			case l.answers <- b[0]:
			case <-l.quit:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// ask reports the guest's exit and waits for the answer. It returns true
// when the supervisor said to restart; false when it said to end, the line
// failed, or stop was closed first (a stop request: the shim ends).
func (l *restartLine) ask(exit messages.ExitRecord, stop <-chan struct{}) bool {
	if l == nil {
		return false
	}
	// An answer nobody asked for is stale: it answers no question.
	select {
	case _, ok := <-l.answers:
		if !ok {
			return false
		}
	default:
	}
	if !l.write(struct {
		GuestExit messages.ExitRecord `json:"guest_exit"`
	}{exit}) {
		return false
	}
	select {
	case b, ok := <-l.answers:
		return ok && b == answerRestart
	case <-stop:
		return false
	}
}

// started reports the guest that replaced the one that ended.
func (l *restartLine) started(pid int) {
	type started struct {
		PID int `json:"pid"`
	}
	l.write(struct {
		GuestStarted started `json:"guest_started"`
	}{started{PID: pid}})
}

// write sends one line of JSON; a failure breaks the line for good.
func (l *restartLine) write(v any) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken {
		return false
	}
	b, err := json.Marshal(v)
	if err == nil {
		_ = l.f.SetWriteDeadline(time.Now().Add(restartWriteTimeout))
		_, err = l.f.Write(append(b, '\n'))
	}
	if err != nil {
		l.broken = true
		return false
	}
	return true
}

// close closes the line and waits for its reader.
func (l *restartLine) close() {
	if l == nil {
		return
	}
	close(l.quit)
	_ = l.f.Close()
	<-l.done
}
