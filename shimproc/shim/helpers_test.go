package shim_test

import (
	"fmt"
	"net"
	"os"
	"time"
)

// gatePollInterval is how often a helper looks for the gate file a test
// creates to let it go on.
const gatePollInterval = 5 * time.Millisecond

// helperEnv, set in a guest's spec env, makes the test binary act as a guest
// program instead of running tests (see TestMain): a guest with behaviour a
// shell cannot easily give, without depending on any other tool.
const helperEnv = "BOXSUP_SHIM_TEST_HELPER"

// Helper modes.
const (
	// helperReadyConnect: args MARKER GATE. Writes to MARKER whether
	// $BOXSUP_READY_SOCKET already exists as a socket, waits for GATE to
	// exist, connects to the socket once, closes and exits 0.
	helperReadyConnect = "ready-connect"
	// helperReport: args OUT. Writes what the guest got (guestReport) as
	// JSON to OUT and exits 0 (see confine_helpers_test.go).
	helperReport = "report"
)

// runHelper runs one helper mode and returns its exit code.
func runHelper(mode string, args []string) int {
	switch mode {
	case helperReadyConnect:
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "ready-connect: want MARKER GATE")
			return 2
		}
		return readyConnect(args[0], args[1])
	case helperReport:
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "report: want OUT")
			return 2
		}
		return writeGuestReport(args[0])
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

func readyConnect(marker, gate string) int {
	path := os.Getenv("BOXSUP_READY_SOCKET")
	status := "socket"
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		status = fmt.Sprintf("no socket at %q (%v)", path, err)
	}
	if err := os.WriteFile(marker, []byte(status), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	end := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(gate); err == nil {
			break
		}
		if time.Now().After(end) {
			fmt.Fprintln(os.Stderr, "gate never opened")
			return 1
		}
		time.Sleep(gatePollInterval)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 1
	}
	_ = conn.Close()
	return 0
}
