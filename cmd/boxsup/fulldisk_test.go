package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
)

// The home on a real, small tmpfs filled to ENOSPC: no command reports a
// success it could not record (issue: stop returned 0 and only logged
// "writing state.json failed"). The guests are quiet: console.log lives on
// the same filesystem.

// recordedState reads the state and last exit state.json holds now.
func recordedState(t *testing.T, home, id string) (state string, exited bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(home, "boxes", id, "state.json"))
	if err != nil {
		t.Fatalf("reading state.json: %v", err)
	}
	var rec struct {
		State    string          `json:"state"`
		LastExit json.RawMessage `json:"last_exit"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("state.json: %v\n%s", err, raw)
	}
	return rec.State, len(rec.LastExit) > 0 && string(rec.LastExit) != "null"
}

// TestStopOnAFullDisk: through supervise, a stop on a full disk stops the
// box but exits 1 saying the change was not written; ps shows the
// supervisor's truth (exited); once space is freed, the supervisor's retry
// writes the exit to state.json. Without a supervisor the stop exits 1 the
// same way, and the next command, with space again, finds the box exited
// (not failed, nothing running). A run -d on the full disk fails and
// leaves no running box.
func TestStopOnAFullDisk(t *testing.T) {
	for _, supervised := range []bool{true, false} {
		name := map[bool]string{true: "supervised", false: "local"}[supervised]
		t.Run(name, func(t *testing.T) {
			disk := testutil.MountSmallDisk(t, "2m")
			e := newEnv(t)
			e.home = filepath.Join(disk.Dir, "home")
			t.Cleanup(disk.Free) // before the env's cleanups, which write
			if supervised {
				e.sup = startSupervise(t, e.home)
			}
			id := e.runDetached("quiet", nil, "exec sleep 300")
			pid := e.ps()[id].PID

			disk.Fill()
			r := e.boxsup("stop", id)
			if r.code != 1 || !strings.Contains(r.stderr, "not written to disk") {
				t.Fatalf("stop on a full disk: %s; want exit 1 saying the change was not written", r)
			}
			if processAlive(pid) {
				t.Fatalf("stop on a full disk left the shim %d running", pid)
			}
			if state, _ := recordedState(t, e.home, id); state != "running" {
				t.Fatalf("state.json on the full disk says %q; want the last record that landed (running)", state)
			}
			if supervised {
				if row := e.ps()[id]; row.State != "exited" || row.PID != 0 {
					t.Fatalf("ps while the write fails: %+v; want the supervisor's truth: exited", row)
				}
			}
			r = e.boxsup("run", "-d", "--name", "nospace", "-e", markEnv, "--", "/bin/sleep", "300")
			if r.code == 0 {
				t.Fatalf("run -d on a full disk succeeded: %s", r)
			}

			disk.Free()
			if supervised {
				eventually(t, "the supervisor's retried write of the exit", func() bool {
					state, exited := recordedState(t, e.home, id)
					return state == "exited" && exited
				})
			}
			rows := e.ps()
			if row := rows[id]; row.State != "exited" || row.PID != 0 {
				t.Fatalf("after space was freed: %+v; want exited", row)
			}
			if row, ok := rows["nospace"]; ok && row.PID != 0 {
				t.Fatalf("the run -d that failed on a full disk left a running box: %+v", row)
			}
		})
	}
}
