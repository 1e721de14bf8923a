package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A live box whose spec.json or state.json is damaged keeps running, is
// explained by ps, and stays stoppable, killable and removable; nothing is
// done on the word of the damaged file (issue: a read-only ps stopped such
// a box, kill exited 0 with the shim alive, rm -f orphaned it).

// damage is one way a record can be damaged.
type damage struct {
	name string
	do   func(t *testing.T, path string)
}

var damages = []damage{
	{"missing", func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}},
	{"garbage", func(t *testing.T, path string) {
		if err := os.WriteFile(path, []byte("garbage{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"another user's", func(t *testing.T, path string) {
		if os.Geteuid() != 0 {
			t.Skip("giving a file to another user needs root")
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}},
	{"a symlink", func(t *testing.T, path string) {
		copyOf := filepath.Join(t.TempDir(), filepath.Base(path))
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(copyOf, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(copyOf, path); err != nil {
			t.Fatal(err)
		}
	}},
}

// psDamage returns the ps JSON row of id with its damage field.
func (e *env) psDamage(id string) (row psJSONRow, damage string, ok bool) {
	e.t.Helper()
	r := e.must("ps", "-a", "--format", "json")
	var rows []struct {
		psJSONRow
		Damage string `json:"damage"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
	}
	for _, row := range rows {
		if row.ID == id {
			return row.psJSONRow, row.Damage, true
		}
	}
	return psJSONRow{}, "", false
}

// TestDamagedRecordsOfALiveBox: for spec.json and state.json, missing,
// garbage, another user's or a symbolic link, without a supervisor: the
// box keeps running with its shim adopted after verification, ps explains
// the damage (JSON and table), and stop, kill or rm -f (one per case, in
// turn) ends the shim; rm -f never leaves it alive.
func TestDamagedRecordsOfALiveBox(t *testing.T) {
	ops := []string{"stop", "kill", "rm -f"}
	n := 0
	for _, file := range []string{"spec.json", "state.json"} {
		for _, d := range damages {
			op := ops[n%len(ops)]
			n++
			t.Run(fmt.Sprintf("%s %s then %s", file, d.name, op), func(t *testing.T) {
				e := newEnv(t)
				id := e.runDetached("live", nil, "exec sleep 300")
				pid := e.ps()[id].PID
				d.do(t, filepath.Join(e.home, "boxes", id, file))

				row, dmg, ok := e.psDamage(id)
				if !ok || row.State != "running" || row.PID != pid {
					t.Fatalf("ps after damaging %s: %+v (present %v); want running with pid %d", file, row, ok, pid)
				}
				if !strings.Contains(dmg, file) || !strings.Contains(row.Reason, file) {
					t.Fatalf("ps --format json does not explain the damage: damage %q, reason %q", dmg, row.Reason)
				}
				if !processAlive(pid) {
					t.Fatalf("the shim %d died when its %s was damaged", pid, file)
				}
				table := e.must("ps").stdout
				if !strings.Contains(table, "\n"+id+": ") || !strings.Contains(table, file) {
					t.Fatalf("the ps table does not explain the damage:\n%s", table)
				}

				switch op {
				case "stop", "kill":
					e.must(op, id)
					if processAlive(pid) {
						t.Fatalf("%s exited 0 but the shim %d lives on", op, pid)
					}
					if row := e.ps()[id]; row.State != "exited" {
						t.Fatalf("after %s: %+v", op, row)
					}
					e.must("rm", id)
				case "rm -f":
					e.must("rm", "-f", id)
					if processAlive(pid) {
						t.Fatalf("rm -f exited 0 but the shim %d lives on", pid)
					}
				}
				if _, err := os.Lstat(filepath.Join(e.home, "boxes", id)); !os.IsNotExist(err) {
					t.Fatalf("the box directory is still there after rm: %v", err)
				}
			})
		}
	}
}

// TestDamagedRecordsSurviveSupervise: a supervise started on a home whose
// boxes have damaged records explains them, and its SIGTERM (which leaves
// detached boxes running) leaves them running: without spec.json the
// detach flag comes from state.json, without state.json from spec.json.
func TestDamagedRecordsSurviveSupervise(t *testing.T) {
	e := newEnv(t)
	noSpec := e.runDetached("nospec", nil, "exec sleep 300")
	badState := e.runDetached("badstate", nil, "exec sleep 300")
	rows := e.ps()
	pids := map[string]int{noSpec: rows[noSpec].PID, badState: rows[badState].PID}
	damages[0].do(t, filepath.Join(e.home, "boxes", noSpec, "spec.json"))
	damages[1].do(t, filepath.Join(e.home, "boxes", badState, "state.json"))

	e.sup = startSupervise(t, e.home)
	for id, file := range map[string]string{noSpec: "spec.json", badState: "state.json"} {
		row, dmg, _ := e.psDamage(id)
		if row.State != "running" || row.PID != pids[id] || !strings.Contains(dmg, file) {
			t.Fatalf("supervise shows %s as %+v, damage %q; want running (pid %d) with the damage of %s", id, row, dmg, pids[id], file)
		}
	}
	e.sup.stop()
	e.sup = nil
	for id, pid := range pids {
		if !processAlive(pid) {
			t.Fatalf("SIGTERM to supervise stopped the detached box %s with a damaged record", id)
		}
	}
	e.must("kill", noSpec)
	e.must("stop", badState)
	for id, pid := range pids {
		if processAlive(pid) {
			t.Fatalf("box %s: its shim %d outlived kill/stop", id, pid)
		}
	}
}
