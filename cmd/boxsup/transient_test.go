package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fdShortBoxes boxes run while `boxsup ps` runs with fdShortLimit open
// files: each adopted shim holds a pidfd, so the later verifications fail
// with EMFILE.
const (
	fdShortBoxes = 60
	fdShortLimit = 40
)

// boxsupWithLimit runs `ulimit -n limit; boxsup --home HOME args...`.
func (e *env) boxsupWithLimit(limit int, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	script := fmt.Sprintf(`ulimit -n %d && exec "$@"`, limit)
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "sh", boxsupBin, "--home", e.home}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running boxsup with ulimit -n %d: %v", limit, err)
	}
	return r
}

// stateFiles reads every box's state.json.
func (e *env) stateFiles() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	dirs, err := os.ReadDir(filepath.Join(e.home, "boxes"))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(e.home, "boxes", d.Name(), "state.json"))
		if err != nil {
			e.t.Fatal(err)
		}
		out[d.Name()] = string(b)
	}
	return out
}

// TestPsShortOfFileDescriptors: `(ulimit -n 40; boxsup ps)` on a home of 60
// running boxes shows the boxes it could not verify as unknown, exits 0 and
// changes nothing: no state.json is rewritten and every shim still runs, as
// a normal ps then shows (issue: 31 boxes became "exited: lost: too many
// open files" and their identities were erased).
func TestPsShortOfFileDescriptors(t *testing.T) {
	// The boxes are started through a supervise, many commands at a time,
	// which then exits (LeaveRunning): the ps below opens the home itself.
	e := newSupervisedEnv(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range fdShortBoxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := e.boxsup("run", "-d", "--name", fmt.Sprintf("box-%02d", i), "-e", markEnv, "--", "/bin/sleep", "1000")
			if r.code != 0 {
				t.Errorf("run -d box-%02d: %s", i, r)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	e.sup.stop()
	e.sup = nil
	before := e.ps()
	for id, row := range before {
		if row.State != "running" || !processAlive(row.PID) {
			t.Fatalf("%s after apply: %+v", id, row)
		}
	}
	states := e.stateFiles()

	r := e.boxsupWithLimit(fdShortLimit, "ps", "-a", "--format", "json")
	if r.code != 0 {
		t.Fatalf("ps with ulimit -n %d: %s", fdShortLimit, r)
	}
	var rows []psJSONRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
	}
	unknown := 0
	for _, row := range rows {
		switch row.State {
		case "running":
		case "unknown":
			unknown++
		default:
			t.Errorf("%s: %s (%s) under a file descriptor shortage; its shim runs", row.ID, row.State, row.Reason)
		}
	}
	if len(rows) != fdShortBoxes || unknown == 0 {
		t.Fatalf("ps with ulimit -n %d listed %d boxes, %d unknown: the limit was never hit?\n%s", fdShortLimit, len(rows), unknown, r.stdout)
	}
	table := e.boxsupWithLimit(fdShortLimit, "ps")
	if table.code != 0 || !strings.Contains(table.stdout, "unknown") {
		t.Fatalf("ps table with ulimit -n %d: %s", fdShortLimit, table)
	}
	// An unknown box has no sample: its CPU and memory are not shown as
	// zeros.
	lines := strings.Split(strings.TrimSpace(table.stdout), "\n")
	header := strings.Fields(lines[0])
	cpu, mem := slices.Index(header, "CPU%"), slices.Index(header, "MEM")
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) > max(cpu, mem) && f[1] == "unknown" && (f[cpu] != "-" || f[mem] != "-") {
			t.Errorf("ps shows CPU%% %s and MEM %s for an unknown box: %q", f[cpu], f[mem], line)
		}
	}
	t.Logf("ps with ulimit -n %d:\n%s", fdShortLimit, table.stdout)

	for id, was := range states {
		if now := e.stateFiles()[id]; now != was {
			t.Errorf("%s: state.json changed under a ps:\nwas %s\nnow %s", id, was, now)
		}
	}
	for id, row := range e.ps() {
		if row.State != "running" || row.PID != before[id].PID || !processAlive(row.PID) {
			t.Errorf("%s after the short ps: %+v, want running as pid %d", id, row, before[id].PID)
		}
	}
}
