package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// stormBoxes is the size of the start storm.
const stormBoxes = 30

// shimsOfBox lists the running (not zombie) shims of box id of home: argv
// `SHIM --box-id ID` and the box directory as working directory.
func shimsOfBox(procs []procInfo, home, id string) []int {
	dir := filepath.Join(home, "boxes", id)
	var out []int
	for _, p := range procs {
		if p.State == 'Z' || len(p.Cmdline) != 3 || p.Cmdline[1] != "--box-id" || p.Cmdline[2] != id {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", p.PID)); err == nil && cwd == dir {
			out = append(out, p.PID)
		}
	}
	return out
}

// homeProcs lists the running processes of home: shims and guests (by
// working directory, and by the marker every test guest carries).
func homeProcs(home string) []procInfo {
	marker := markerEnv + "=" + home
	var out []procInfo
	for _, p := range scanProcs() {
		if p.State == 'Z' || p.PID == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", p.PID))
		mine := strings.HasPrefix(cwd, home+"/")
		for _, kv := range p.Environ {
			mine = mine || kv == marker
		}
		if mine {
			out = append(out, p)
		}
	}
	return out
}

// homeCgroupParent is the cgroup under which a supervisor of home puts its
// boxes' cgroups, "" without a writable cgroup v2 hierarchy.
func homeCgroupParent(home string) string {
	root, ok := shimproc.CgroupAvailable()
	if !ok {
		return ""
	}
	sum := sha256.Sum256([]byte(home))
	return filepath.Join(root, "boxsup", hex.EncodeToString(sum[:])[:12])
}

// TestSupervisorKilledMidStartStorm: a supervisor process starting 30
// detached boxes at once (half with restart=always) is SIGKILLed at several
// points of the storm, with and without box cgroups. A new supervisor on the
// home ends with exactly one shim per running box and none for a box at
// rest, which says why it is; every box stops, and Shutdown(StopAll) leaves
// no process of the home and no cgroup behind (issue: shims of interrupted
// starts were reported lost yet kept running, Shutdown never stopped them,
// and a restarting box got a second shim).
//
// The kill points are counted in shims spawned: when the Nth exists, the
// other starts are in flight at every stage (intent written, spawning,
// identity not yet recorded, waiting for ready); how many boxes were caught
// in each stage is logged.
func TestSupervisorKilledMidStartStorm(t *testing.T) {
	checkGoroutines(t)
	if testing.Short() {
		t.Skip("a storm of 30 boxes, 8 times")
	}
	modes := []struct {
		name, env string
		mode      shimproc.CgroupMode
	}{{"cgroup", "auto", shimproc.CgroupAuto}, {"no-cgroup", "off", shimproc.CgroupOff}}
	for _, m := range modes {
		if m.mode == shimproc.CgroupAuto {
			if _, ok := shimproc.CgroupAvailable(); !ok {
				t.Logf("no writable cgroup v2 hierarchy: the cgroup runs use none")
			}
		}
		for _, after := range []killPoint{{}, {shims: 1}, {shims: 10}, {shims: 25}} {
			t.Run(fmt.Sprintf("%s/%s", m.name, after), func(t *testing.T) {
				t.Parallel()
				stormAndCrash(t, m.env, m.mode, after)
			})
		}
	}
}

// killPoint is when the storm's supervisor is killed: once it has spawned
// that many shims (its children in /proc, the nearest the test gets to the
// spawns themselves; events come later, once state.json and spec.json are
// durable), or, at zero, as soon as it has printed its pid, before any
// Start has returned.
type killPoint struct {
	shims int
}

func (k killPoint) String() string {
	if k.shims == 0 {
		return "at-boot"
	}
	return fmt.Sprintf("after-%d-shims", k.shims)
}

// reached consumes the child's progress lines and reports whether the kill
// point has come.
func (k killPoint) reached(t *testing.T, r *reaperProc, tr *procTracker, child int) bool {
	t.Helper()
	if k.shims == 0 || countShims(child) >= k.shims {
		return true
	}
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatalf("the storm's supervisor ended early (see stderr)")
			}
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && f[0] == "started":
				pid, _ := strconv.Atoi(f[2])
				tr.track(pid, "shim of "+f[1])
			case len(f) > 1 && f[0] == "failed":
				t.Errorf("a Start of the storm failed: %v", f[1:])
			case len(f) == 1 && f[0] == "done":
				// Every Start returned between two polls (a slow poll on
				// a loaded machine): the kill comes after the storm.
				t.Logf("the storm ended before the kill point %s was seen", k)
				return true
			}
			continue
		default:
		}
		return false
	}
}

// countShims counts the shims of boxes that process pid has spawned and
// that still run: its children (from every thread's children list, cheap
// enough to poll) that run a shim with --box-id.
func countShims(pid int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	n := 0
	for _, task := range tasks {
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, child := range strings.Fields(string(raw)) {
			if argv := nulSplit("/proc/" + child + "/cmdline"); len(argv) == 3 && argv[1] == "--box-id" {
				n++
			}
		}
	}
	return n
}

func stormAndCrash(t *testing.T, cgEnv string, mode shimproc.CgroupMode, after killPoint) {
	began := time.Now()
	mark := func(what string) { t.Logf("%v: %s", time.Since(began).Round(time.Millisecond), what) }
	home := t.TempDir()
	tr := trackerFor(t, home)
	// IDs of this run's own: the leftover checks of the runs in parallel
	// look for shims by box ID.
	var ids []string
	for i := range stormBoxes {
		ids = append(ids, fmt.Sprintf("%s-%02d", strings.ReplaceAll(t.Name()[strings.IndexByte(t.Name(), '/')+1:], "/", "-"), i))
		tr.useBox(ids[i])
	}
	r := startReaper(t, "storm",
		childHomeEnv+"="+home, childIDsEnv+"="+strings.Join(ids, ","), childCgroupEnv+"="+cgEnv)
	f := r.next(t)
	if len(f) != 2 || f[0] != "pid" {
		t.Fatalf("the child printed %q first, want its pid", f)
	}
	child, _ := strconv.Atoi(f[1])
	for !after.reached(t, r, tr, child) {
		time.Sleep(conditionPollInterval)
	}
	mark("kill")
	killAndWait(t, child)

	// What the crash left: shims by box, and the records' stages.
	procs := scanProcs()
	hm, err := layout.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]int{}
	for _, id := range ids {
		shims := shimsOfBox(procs, home, id)
		for _, pid := range shims {
			tr.trackTree(pid, "shim of "+id)
		}
		stage := "no box directory"
		if box, err := hm.Box(id); err == nil {
			if rec, err := box.ReadState(); err != nil {
				stage = "no state record"
			} else {
				stage = string(rec.State)
				if rec.State == messages.StateStarting && rec.Identity.Zero() {
					stage += ", identity not recorded"
				}
			}
		}
		stage += fmt.Sprintf(", %d shim(s)", len(shims))
		stages[stage]++
	}
	t.Logf("killed %s; boxes left: %v", after, stages)

	h := startHarness(t, home, withConfig(func(c *actors.Config) { c.Cgroup = mode }))
	mark("booted")
	var list []messages.BoxStatus
	eventually(t, "every box to settle (running, or at rest)", func() (bool, string) {
		list, err = h.sup.List(h.ctx(), actors.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, st := range list {
			if st.State != messages.StateRunning && !st.State.AtRest() {
				return false, fmt.Sprintf("%s is %s (%s)", st.ID, st.State, st.Reason)
			}
		}
		return true, ""
	})
	mark("settled")
	procs = scanProcs()
	reasons := map[string]int{}
	for _, st := range list {
		shims := shimsOfBox(procs, home, st.ID)
		for _, pid := range shims {
			tr.trackTree(pid, "shim of "+st.ID)
		}
		switch {
		case st.State == messages.StateRunning && (len(shims) != 1 || shims[0] != st.PID):
			t.Errorf("%s is running as pid %d, but its shims are %v: want exactly that one", st.ID, st.PID, shims)
		case st.State != messages.StateRunning && len(shims) != 0:
			t.Errorf("%s is %s (%s), but its shims %v run", st.ID, st.State, st.Reason, shims)
		case st.State != messages.StateRunning && st.Reason == "":
			t.Errorf("%s is %s without a reason", st.ID, st.State)
		}
		if st.State != messages.StateRunning {
			reasons[st.Reason]++
		}
	}
	if len(reasons) > 0 {
		t.Logf("boxes at rest after the reconcile, by reason: %v", reasons)
	}

	var wg sync.WaitGroup
	for _, st := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopped, err := h.sup.Stop(h.ctx(), st.ID, 10*time.Second)
			if err != nil || stopped.State.Live() {
				t.Errorf("Stop(%s) = %s, %v", st.ID, stopped.State, err)
			}
		}()
	}
	wg.Wait()
	mark("stopped")
	procs = scanProcs()
	for _, st := range list {
		if shims := shimsOfBox(procs, home, st.ID); len(shims) != 0 {
			t.Errorf("%s: shims %v still run after Stop returned", st.ID, shims)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.sup.Shutdown(ctx, actors.StopAll); err != nil {
		t.Errorf("Shutdown(StopAll): %v", err)
	}
	mark("shut down")
	if left := homeProcs(home); len(left) > 0 {
		var desc []string
		for _, p := range left {
			desc = append(desc, p.String())
		}
		sort.Strings(desc)
		t.Errorf("processes of the home left after Shutdown(StopAll):\n  %s", strings.Join(desc, "\n  "))
	}
	if cg := homeCgroupParent(h.sup.Home()); cg != "" {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("the home's cgroup %s is left after Shutdown(StopAll) (stat: %v)", cg, err)
		}
	}
}
