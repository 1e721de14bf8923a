package shimproc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShimGetsOneP: the supervisor starts every shim with GOMAXPROCS=1 in
// its environment, replacing its own value, and the guest, whose
// environment comes from the spec alone, never sees it.
func TestShimGetsOneP(t *testing.T) {
	t.Setenv("GOMAXPROCS", "4") // the supervisor's own; not the shim's
	box := newBox(t, "onep")
	spec := guestSpec("/bin/sleep", "30")
	spec.GuestEntrypoint.Env = []string{"GUEST_ONLY=yes"}
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupOff})
	environ := "\x00" + procFile(t, h.PID(), "environ")
	if !strings.Contains(environ, "\x00GOMAXPROCS=1\x00") || strings.Contains(environ, "GOMAXPROCS=4") {
		t.Errorf("the shim's environment does not carry GOMAXPROCS=1 alone:\n%q", environ)
	}
	var guestEnv string
	waitFor(t, 10*time.Second, "the guest's environment", func() bool {
		tree := descendants(h.PID())
		if len(tree) != 2 {
			return false
		}
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(tree[1]) + "/environ")
		guestEnv = string(env)
		return strings.Contains(guestEnv, "GUEST_ONLY=yes")
	})
	if strings.Contains(guestEnv, "GOMAXPROCS") {
		t.Errorf("the guest's environment has GOMAXPROCS: %q", guestEnv)
	}
	if err := h.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExited(t, h, 10*time.Second)
}
