package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// childHangUpEnv makes the test binary play a server that dies with a
// request unanswered: it listens on the socket named by the variable's
// value, prints "listening", reads one request line and exits.
const childHangUpEnv = "BOXSUP_CONTROL_TEST_HANGUP"

func childHangUp(path string) int {
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("listening")
	conn, err := l.Accept()
	if err != nil {
		return 1
	}
	_, _ = bufio.NewReader(conn).ReadString('\n')
	return 0 // the exit closes the connection, unanswered
}

// TestServerThatDiesMidRequestIsNamedAsGone (found by an operator: a
// supervisor killed with SIGKILL was reported as "shutting down"): the
// error says the server exited and that the request's fate is unknown, and
// keeps the cause that lets a query be sent again.
func TestServerThatDiesMidRequestIsNamedAsGone(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s.sock")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childHangUpEnv+"="+path)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "listening" {
		t.Fatalf("the dying server did not start: %q", line)
	}
	c := &Client{path: path}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err = c.do(ctx, &Request{Op: OpList})
	if !errors.Is(err, messages.ErrShuttingDown) || !errors.Is(err, errHungUp) {
		t.Fatalf("got %v; want ErrShuttingDown caused by errHungUp", err)
	}
	if !strings.Contains(err.Error(), "it has exited, so whether the request took effect is unknown") {
		t.Fatalf("the error does not say the server is gone: %v", err)
	}
	if !resendable(err, true) || resendable(err, false) {
		t.Fatalf("resendable: a query may be sent again, a change may not (%v)", err)
	}
}
