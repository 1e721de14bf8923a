package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the last ')' (the command name may contain one).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// reapChildren collects every exited child of this process. The demo's
// shims are its children even after a supervisor that adopted them (and
// so does not reap them) has gone; without this they would stay zombies
// until boxsup exits. Call it only when no supervisor is open.
func reapChildren() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// leftovers returns the demo's processes still alive: shims it saw, and any
// process (a guest, or something a guest forked) whose environment carries
// the demo's marker.
func (d *demo) leftovers() ([]int, error) {
	reapChildren()
	found := map[int]bool{}
	d.mu.Lock()
	for pid := range d.shimPIDs {
		if processAlive(pid) {
			found[pid] = true
		}
	}
	d.mu.Unlock()
	marker := []byte(demoMarkerEnv + "=" + d.home + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone meanwhile, or another user's (hence not the demo's)
		}
		if bytes.Contains(env, marker) && processAlive(pid) {
			found[pid] = true
		}
	}
	out := make([]int, 0, len(found))
	for pid := range found {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out, nil
}
