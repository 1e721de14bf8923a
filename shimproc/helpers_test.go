package shimproc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// The test binary doubles as a few helper programs, chosen by helperRoleEnv.
const (
	helperRoleEnv    = "SHIMPROC_TEST_HELPER"
	helperRequestEnv = "SHIMPROC_TEST_HELPER_REQUEST"

	// roleReaper makes itself a child subreaper, runs roleSpawnDetached and
	// then reaps orphans until its stdin closes. The detached shim is thus
	// orphaned (its spawner exits, like a supervisor that restarted) but
	// neither the test's child nor an unreaped zombie of PID 1.
	roleReaper = "reaper"
	// roleSpawnDetached spawns a detached box, prints its identity as one
	// JSON line and exits.
	roleSpawnDetached = "spawn-detached"
	// roleConnectReady is a guest: it connects to $BOXSUP_READY_SOCKET and
	// then sleeps.
	roleConnectReady = "connect-ready"
)

// noRaceExitSleep stops a race-enabled helper from sleeping a second at exit
// (the race runtime's default atexit_sleep_ms).
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// detachedRequest is what roleSpawnDetached spawns.
type detachedRequest struct {
	Home         string
	ID           string
	Shim         string
	Argv         []string
	Cgroup       CgroupMode
	CgroupParent string
}

// detachedResult is what roleSpawnDetached prints.
type detachedResult struct {
	Identity messages.Identity
	Cgroup   string
	Err      string
}

func runHelper(role string) int {
	switch role {
	case roleReaper:
		return runReaper()
	case roleSpawnDetached:
		return runSpawnDetached()
	case roleConnectReady:
		conn, err := net.Dial("unix", os.Getenv("BOXSUP_READY_SOCKET"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = conn.Close()
		time.Sleep(time.Hour)
		return 0
	}
	if code, ok := runLimitsHelper(role); ok {
		return code
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	return 2
}

func runReaper() int {
	if err := testutil.BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	inner := exec.Command(os.Args[0], "-test.run=^$")
	inner.Env = append(os.Environ(), helperRoleEnv+"="+roleSpawnDetached)
	inner.Stdout, inner.Stderr = os.Stdout, os.Stderr
	if err := inner.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testutil.ReapChildren()
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes our stdin
	return 0
}

func runSpawnDetached() int {
	var req detachedRequest
	if err := json.Unmarshal([]byte(os.Getenv(helperRequestEnv)), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := detachedResult{}
	home, err := layout.Open(req.Home)
	var box layout.Box
	if err == nil {
		box, err = home.Box(req.ID)
	}
	var h *Handle
	if err == nil {
		spec := guestSpec(req.Argv...)
		spec.Detach = true
		h, err = Spawn(context.Background(), SpawnRequest{
			Box: box, Binary: req.Shim, Spec: spec, ReadyTimeout: 10 * time.Second,
			Cgroup: req.Cgroup, CgroupParent: req.CgroupParent,
		})
	}
	if err != nil {
		res.Err = err.Error()
	} else {
		res.Identity, res.Cgroup = h.Identity(), h.CgroupPath()
		_ = h.Close() // detached: the shim keeps running
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return 0
}

// spawnOrphan spawns a detached box through the helper processes, so that
// the shim is not a child of the test process, and returns its identity and
// cgroup. Clean-up kills the box (if still alive) and stops the reaper.
func spawnOrphan(t *testing.T, box layout.Box, cgroup CgroupMode, cgroupParent string, argv ...string) detachedResult {
	t.Helper()
	req, err := json.Marshal(detachedRequest{
		Home: filepath.Dir(filepath.Dir(box.Dir)), ID: box.ID, Shim: shimBinary, Argv: argv,
		Cgroup: cgroup, CgroupParent: cgroupParent,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperRoleEnv+"="+roleReaper, helperRequestEnv+"="+string(req), noRaceExitSleep)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading the helper's result: %v", err)
	}
	var res detachedResult
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatalf("helper result %q: %v", line, err)
	}
	if res.Err != "" {
		t.Fatalf("helper Spawn: %s", res.Err)
	}
	t.Cleanup(func() {
		// Kill the orphan if the test left it running.
		if h, err := Adopt(box, res.Identity, AdoptOptions{Cgroup: res.Cgroup}); err == nil {
			_ = h.KillTree()
			waitClosed(h.Exited(), 10*time.Second)
			_ = h.Close()
			_ = h.RemoveCgroup()
		}
	})
	return res
}
