package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// procID names one process for its whole life: a PID is recycled, a PID with
// its start time (field 22 of /proc/PID/stat) is not.
type procID struct {
	PID   int
	Start uint64
}

// procStat is what the tests need from /proc/PID/stat.
type procStat struct {
	State byte
	PPID  int
	PGID  int
	Ticks uint64 // start time, clock ticks since boot
}

// readStat parses /proc/PID/stat. The command name (field 2) may hold spaces
// and parentheses, so the fields are read after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var st procStat
	st.State = f[0][0]
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.Ticks, err = strconv.ParseUint(f[19], 10, 64)
	return st, err
}

// identityOf returns pid's identity, or an error when it does not exist.
func identityOf(pid int) (procID, error) {
	st, err := readStat(pid)
	if err != nil {
		return procID{}, err
	}
	return procID{PID: pid, Start: st.Ticks}, nil
}

// state reports whether the process still exists (same PID and start time)
// and whether it is a zombie, with its parent.
func (id procID) state() (present, zombie bool, ppid int) {
	st, err := readStat(id.PID)
	if err != nil || st.Ticks != id.Start {
		return false, false, 0
	}
	return true, st.State == 'Z', st.PPID
}

// alive reports whether the process exists and has not exited.
func (id procID) alive() bool {
	present, zombie, _ := id.state()
	return present && !zombie
}

// gone reports whether the process has exited and been reaped.
func (id procID) gone() bool {
	present, _, _ := id.state()
	return !present
}

// procInfo is one /proc entry as seen by a scan.
type procInfo struct {
	procID
	procStat
	Cmdline []string
	Environ []string
}

func (p procInfo) String() string {
	return fmt.Sprintf("pid %d (ppid %d, state %c): %q", p.PID, p.PPID, p.State, p.Cmdline)
}

// scanProcs reads every process in /proc. Processes that vanish mid-scan
// are skipped.
func scanProcs() []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		p := procInfo{procID: procID{PID: pid, Start: st.Ticks}, procStat: st}
		p.Cmdline = nulSplit(fmt.Sprintf("/proc/%d/cmdline", pid))
		p.Environ = nulSplit(fmt.Sprintf("/proc/%d/environ", pid))
		out = append(out, p)
	}
	return out
}

func nulSplit(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// descendants returns every live descendant of pid found in procs.
func descendants(procs []procInfo, pid int) []procInfo {
	children := map[int][]procInfo{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p)
	}
	var out []procInfo
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out
}

// procTracker remembers every process a test's boxes have had (shims from
// events and statuses, guests and their children from tree walks) and the
// box IDs used, for assertNoLeftovers.
type procTracker struct {
	home   string
	mu     sync.Mutex
	procs  map[procID]string // identity → label
	boxIDs map[string]bool
}

var (
	trackersMu sync.Mutex
	trackers   = map[string]*procTracker{}
)

// trackerFor returns the home's tracker, creating it (and registering
// assertNoLeftovers as a cleanup) on first use.
func trackerFor(t *testing.T, home string) *procTracker {
	trackersMu.Lock()
	defer trackersMu.Unlock()
	if tr, ok := trackers[home]; ok {
		return tr
	}
	tr := &procTracker{home: home, procs: map[procID]string{}, boxIDs: map[string]bool{}}
	trackers[home] = tr
	t.Cleanup(func() {
		assertNoLeftovers(t, home)
		trackersMu.Lock()
		delete(trackers, home)
		trackersMu.Unlock()
	})
	return tr
}

// observe records the shim PID of every event that carries one.
func (tr *procTracker) observe(ev messages.Event) {
	tr.mu.Lock()
	tr.boxIDs[ev.Box()] = true
	tr.mu.Unlock()
	switch e := ev.(type) {
	case messages.BoxStarted:
		tr.track(e.PID, "shim of "+e.BoxID)
	case messages.BoxReady:
		tr.track(e.PID, "shim of "+e.BoxID)
	case messages.BoxAdopted:
		tr.track(e.PID, "shim of "+e.BoxID)
	}
}

// track records pid (when it still exists) under label.
func (tr *procTracker) track(pid int, label string) procID {
	id, err := identityOf(pid)
	if err != nil {
		return procID{}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if _, ok := tr.procs[id]; !ok {
		tr.procs[id] = label
	}
	return id
}

// trackTree records pid and all its current descendants, and returns them
// (pid first).
func (tr *procTracker) trackTree(pid int, label string) []procInfo {
	procs := scanProcs()
	var tree []procInfo
	for _, p := range procs {
		if p.PID == pid {
			tree = append(tree, p)
		}
	}
	tree = append(tree, descendants(procs, pid)...)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, p := range tree {
		l := label
		if i > 0 {
			l = fmt.Sprintf("descendant of %s: %q", label, p.Cmdline)
		}
		if _, ok := tr.procs[p.procID]; !ok {
			tr.procs[p.procID] = l
		}
	}
	return tree
}

// useBox records a box ID the test used, for the shim argv scan.
func (tr *procTracker) useBox(id string) {
	tr.mu.Lock()
	tr.boxIDs[id] = true
	tr.mu.Unlock()
}

// leftovers lists what of the test still runs: tracked processes that are
// alive (or are our own unreaped zombies), their descendants, guests carrying
// the test's marker, and shims started for the test's box IDs.
func (tr *procTracker) leftovers() []string {
	procs := scanProcs()
	byID := map[procID]procInfo{}
	for _, p := range procs {
		byID[p.procID] = p
	}
	tr.mu.Lock()
	tracked := make(map[procID]string, len(tr.procs))
	for id, l := range tr.procs {
		tracked[id] = l
	}
	ids := make(map[string]bool, len(tr.boxIDs))
	for id := range tr.boxIDs {
		ids[id] = true
	}
	tr.mu.Unlock()

	found := map[procID]string{}
	self := os.Getpid()
	for id, label := range tracked {
		p, ok := byID[id]
		switch {
		case !ok:
		case p.State == 'Z' && p.PPID == self:
			found[id] = label + " (zombie never reaped by the supervisor)"
		case p.State != 'Z':
			found[id] = label
			for _, d := range descendants(procs, id.PID) {
				if d.State != 'Z' {
					found[d.procID] = "descendant of " + label
				}
			}
		}
	}
	marker := markerEnv + "=" + tr.home
	for _, p := range procs {
		if p.State == 'Z' {
			continue
		}
		for _, kv := range p.Environ {
			if kv == marker {
				found[p.procID] = "guest of this test"
			}
		}
		if len(p.Cmdline) == 3 && p.Cmdline[0] == shimBinary && p.Cmdline[1] == "--box-id" && ids[p.Cmdline[2]] {
			found[p.procID] = "shim of " + p.Cmdline[2]
		}
	}
	var out []string
	for id, label := range found {
		desc := fmt.Sprintf("pid %d", id.PID)
		if p, ok := byID[id]; ok {
			desc = p.String()
		}
		out = append(out, label+": "+desc)
	}
	sort.Strings(out)
	return out
}

// killLeftovers SIGKILLs whatever leftovers would report that is still the
// same process, so that one failing test does not spill into the next.
func (tr *procTracker) killLeftovers() {
	procs := scanProcs()
	marker := markerEnv + "=" + tr.home
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, p := range procs {
		if p.State == 'Z' || p.PID == os.Getpid() {
			continue
		}
		_, tracked := tr.procs[p.procID]
		marked := false
		for _, kv := range p.Environ {
			marked = marked || kv == marker
		}
		isShim := len(p.Cmdline) == 3 && p.Cmdline[0] == shimBinary && tr.boxIDs[p.Cmdline[2]]
		if tracked || marked || isShim {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// assertNoLeftovers fails the test if any process of the test in home is
// still running once a deadline has passed: every shim seen through events
// or statuses, their guests and the guests' children (found through the
// tree, and through the marker every test guest carries in its environment),
// and any shim process started for one of the test's box IDs. A zombie whose
// parent is this process counts as a leftover too: the supervisor reaps its
// own children. Survivors are killed after being reported.
func assertNoLeftovers(t *testing.T, home string) {
	t.Helper()
	trackersMu.Lock()
	tr := trackers[home]
	trackersMu.Unlock()
	if tr == nil {
		t.Errorf("assertNoLeftovers: no tracker for %s", home)
		return
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		left := tr.leftovers()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of this test still running %s after its end:\n  %s", waitTimeout, strings.Join(left, "\n  "))
			tr.killLeftovers()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitFilePath is where a box's shim writes its exit record.
func exitFilePath(home, id string) string {
	return filepath.Join(home, "boxes", id, "exit.json")
}
