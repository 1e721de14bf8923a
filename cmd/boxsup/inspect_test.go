package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// inspectAll runs `boxsup inspect` (JSON) and decodes its array; the exit
// code is the caller's to check.
func (e *env) inspectAll(ids ...string) ([]inspectResult, result) {
	e.t.Helper()
	r := e.boxsup(append([]string{"inspect"}, ids...)...)
	var out []inspectResult
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("inspect %v: %v\n%s", ids, err, r)
	}
	return out, r
}

// inspect returns one box's inspection, failing the test on an error.
func (e *env) inspect(id string) inspectResult {
	e.t.Helper()
	out, r := e.inspectAll(id)
	if r.code != 0 || len(out) != 1 || out[0].Error != nil {
		e.t.Fatalf("inspect %s: %s", id, r)
	}
	return out[0]
}

// tableRow reports whether a "key  value" table has a row key whose value
// starts with prefix.
func tableRow(out, key, prefix string) bool {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, key+"  "); ok && strings.HasPrefix(strings.TrimLeft(rest, " "), prefix) {
			return true
		}
	}
	return false
}

func sentinel(t *testing.T) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "sentinel-" + hex.EncodeToString(b[:])
}

// TestInspectShowsEverythingButSecrets: inspect reports status, record,
// spec and paths, shows a secret only as [REDACTED] in both formats,
// reports an unknown ID in the array and on stderr (exit 1), and reports
// a damaged state.json or spec.json in its output while the box runs on.
func TestInspectShowsEverythingButSecrets(t *testing.T) {
	e := newSupervisedEnv(t)
	secret := sentinel(t)
	r := runBoxsup(t, []string{"INSPECT_TOKEN=" + secret}, "--home", e.home, "run", "-d", "--name", "web", "-e", markEnv,
		"--secret-env", "INSPECT_TOKEN", "--label", "app=web", "--stop-timeout", "7s", "--", "/bin/sh", "-c", "exec sleep 60")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	pid := e.ps()["web"].PID

	all, r := e.inspectAll("web", "nobody")
	if r.code != 1 || len(all) != 2 || !strings.Contains(r.stderr, `"nobody"`) {
		t.Fatalf("inspect web nobody: want exit 1, two entries and the unknown ID named: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatalf("inspect printed the secret value: %s", r)
	}
	web, nobody := all[0], all[1]
	if nobody.ID != "nobody" || nobody.Error == nil || nobody.Error.Code != messages.ErrNotFound {
		t.Errorf("the unknown box's entry: %+v", nobody)
	}
	switch {
	case web.Error != nil:
		t.Fatalf("web: %v", web.Error)
	case web.Status.State != messages.StateRunning || web.Status.PID != pid || web.Status.Labels["app"] != "web" ||
		web.Status.StopTimeout != 7*time.Second || web.Status.Generation != 1:
		t.Errorf("status: %+v", web.Status)
	case web.Record == nil || web.Record.Identity.PID != pid || web.Record.Identity.BootID == "":
		t.Errorf("record: %+v (%v)", web.Record, web.RecordError)
	case web.Spec == nil || len(web.Spec.Spec.Secrets) != 1 || web.Spec.Spec.Secrets[0].Value.Reveal() != messages.Redacted:
		t.Errorf("spec: %+v (%v)", web.Spec, web.SpecError)
	case web.Paths.ConsoleLog != filepath.Join(web.Paths.Dir, "console.log") || web.Paths.Home == "":
		t.Errorf("paths: %+v", web.Paths)
	}
	if _, err := os.Stat(web.Paths.ShimLog); err != nil {
		t.Errorf("the shim log inspect names: %v", err)
	}

	table := e.must("inspect", "--format", "table", "web")
	for key, want := range map[string]string{"Secrets": "INSPECT_TOKEN=[REDACTED]", "Console log": web.Paths.ConsoleLog,
		"Labels": "app=web", "Identity": "pid ", "Stop timeout": "7s"} {
		if !tableRow(table.stdout, key, want) {
			t.Errorf("inspect --format table lacks %s %q:\n%s", key, want, table.stdout)
		}
	}
	if strings.Contains(table.stdout+table.stderr, secret) {
		t.Fatalf("inspect --format table printed the secret value: %s", table)
	}

	for _, f := range []string{web.Paths.State, web.Paths.Spec} {
		if err := os.WriteFile(f, []byte("{damaged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	damaged := e.inspect("web")
	if damaged.Record != nil || damaged.RecordError == nil || damaged.RecordError.Code != messages.ErrCorruptFile ||
		damaged.Spec != nil || damaged.SpecError == nil || damaged.SpecError.Code != messages.ErrCorruptFile {
		t.Fatalf("inspect of damaged files: record %+v (%v), spec %+v (%v)", damaged.Record, damaged.RecordError, damaged.Spec, damaged.SpecError)
	}
	if tbl := e.must("inspect", "--format", "table", "web"); !tableRow(tbl.stdout, "state.json", "error: corrupt") {
		t.Errorf("the table does not show the damaged state.json:\n%s", tbl.stdout)
	}
	if row := e.ps()["web"]; row.State != "running" || row.PID != pid {
		t.Fatalf("the box after inspecting its damaged files: %+v", row)
	}
}

// TestUpdateChangesSettingsInPlace: update changes the restart policy,
// stop timeout and labels without touching the process, durably (a new
// supervisor sees them); ps shows the labels; two updates at once both
// keep their label; an empty or malformed update is a usage error.
func TestUpdateChangesSettingsInPlace(t *testing.T) {
	e := newSupervisedEnv(t)
	e.runDetached("web", []string{"--label", "app=web", "--label", "tier=front"}, "exec sleep 60")
	pid := e.ps()["web"].PID

	r := e.must("update", "web", "--restart", "on-failure:3", "--stop-timeout", "2s", "--label", "tier=db", "--label-rm", "app", "--format", "json")
	var st messages.BoxStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("update --format json: %v\n%s", err, r)
	}
	if st.PID != pid || st.Restart.Mode != messages.RestartOnFailure || st.Restart.MaxRestarts != 3 || st.StopTimeout != 2*time.Second ||
		len(st.Labels) != 1 || st.Labels["tier"] != "db" {
		t.Fatalf("update: %+v", st)
	}
	if ps := e.must("ps"); !strings.Contains(ps.stdout, "LABELS") || !strings.Contains(ps.stdout, "tier=db") {
		t.Fatalf("ps does not show the labels:\n%s", ps.stdout)
	}

	var wg sync.WaitGroup
	results := make([]result, 2)
	for i, label := range []string{"one=1", "two=2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.boxsup("update", "web", "--label", label)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("concurrent update: %s", r)
		}
	}
	if got := e.inspect("web").Status.Labels; len(got) != 3 || got["one"] != "1" || got["two"] != "2" {
		t.Fatalf("labels after two concurrent updates: %v", got)
	}

	e.sup.stop()
	e.sup = startSupervise(t, e.home)
	after := e.inspect("web")
	if after.Status.PID != pid || after.Status.Restart.Mode != messages.RestartOnFailure || after.Status.Labels["tier"] != "db" ||
		after.Spec == nil || after.Spec.StopTimeout != 2*time.Second {
		t.Fatalf("after a new supervisor: %+v, spec %+v", after.Status, after.Spec)
	}

	for _, args := range [][]string{{"update", "web"}, {"update", "web", "--restart", "sometimes"}, {"update", "web", "--restart", "always:2"},
		{"update", "web", "--label", "novalue"}, {"update"}} {
		if r := e.boxsup(args...); r.code != 2 {
			t.Errorf("boxsup %v: want exit 2: %s", args, r)
		}
	}
	if r := e.boxsup("update", "nobody", "--label", "a=b"); r.code != 1 || !strings.Contains(r.stderr, `"nobody"`) {
		t.Errorf("update of an unknown box: %s", r)
	}
}

// TestJSONOfCommandsOnSeveralBoxes: start, stop, kill and rm print an
// array of {id, status, error} in the order of the IDs with --format json,
// and exit 1 when one failed; run -d --format json prints the status.
func TestJSONOfCommandsOnSeveralBoxes(t *testing.T) {
	e := newEnv(t)
	r := e.must("run", "-d", "--name", "a", "--format", "json", "-e", markEnv, "--", "/bin/sh", "-c", "exec sleep 60")
	var st messages.BoxStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.ID != "a" || st.State != messages.StateRunning {
		t.Fatalf("run -d --format json: %v\n%s", err, r)
	}
	if r := e.boxsup("run", "--format", "json", "--", "/bin/true"); r.code != 2 {
		t.Errorf("run --format json without -d: %s", r)
	}
	for _, args := range [][]string{
		{"stop", "--format", "json", "a", "nobody"},
		{"start", "--format", "json", "a", "nobody"},
		{"kill", "--format", "json", "a", "nobody"},
		{"rm", "--format", "json", "a", "nobody"},
	} {
		r := e.boxsup(args...)
		var out []boxResult
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("boxsup %v: %v\n%s", args, err, r)
		}
		if r.code != 1 || len(out) != 2 || out[0].ID != "a" || out[0].Error != nil || out[0].Status == nil ||
			out[1].ID != "nobody" || out[1].Error == nil || out[1].Error.Code != messages.ErrNotFound {
			t.Errorf("boxsup %v: %s", args, r)
		}
	}
}

// eventsProc is a running `boxsup events`.
type eventsProc struct {
	cmd    *exec.Cmd
	stdout *testutil.SyncBuffer
	stderr *testutil.SyncBuffer
	done   chan error
}

func startEvents(t *testing.T, e *env, args ...string) *eventsProc {
	t.Helper()
	p := &eventsProc{stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(boxsupBin, append([]string{"--home", e.home, "events"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// eventLine is one line of `boxsup events`.
type eventLine struct {
	Kind  string `json:"kind"`
	Seq   uint64 `json:"seq"`
	BoxID string `json:"box_id"`
	State string `json:"state"`
}

func eventLines(t *testing.T, out string) []eventLine {
	t.Helper()
	var lines []eventLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l eventLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("events: a line is not JSON: %q", sc.Text())
		}
		lines = append(lines, l)
	}
	return lines
}

func kindsOf(lines []eventLine) string {
	var kinds []string
	for _, l := range lines {
		kinds = append(kinds, l.BoxID+":"+l.Kind)
	}
	return strings.Join(kinds, ",")
}

// TestEventsStreamFromSupervise: events streams the selected events of a
// running supervise as JSON lines, numbered in order, replaying from
// --since so that nothing between the start of the command and the start
// of the stream is missed; SIGINT ends it with exit 0; --until in the past
// ends it after the history; a --since before the supervisor says so on
// stderr; table format is for people.
func TestEventsStreamFromSupervise(t *testing.T) {
	e := newSupervisedEnv(t)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	p := startEvents(t, e, "--since", since, "--filter", "label=app=web")
	e.runDetached("web", []string{"--label", "app=web"}, "exec sleep 60")
	e.runDetached("other", nil, "exec sleep 60")
	e.must("stop", "web")
	want := "web:BoxStarted,web:BoxReady,web:BoxExited"
	eventually(t, "web's events to be streamed", func() bool {
		return kindsOf(eventLines(t, p.stdout.String())) == want
	})
	lines := eventLines(t, p.stdout.String())
	for i := 1; i < len(lines); i++ {
		if lines[i].Seq <= lines[i-1].Seq {
			t.Fatalf("events out of order: %+v", lines)
		}
	}
	if lines[2].State != "exited" {
		t.Errorf("BoxExited's state: %+v", lines[2])
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("events after SIGINT: %v\nstderr: %s", err, p.stderr.String())
		}
	case <-time.After(waitDeadline):
		t.Fatal("events did not end on SIGINT")
	}

	r := e.must("events", "--since", since, "--until", "0s", "--filter", "box=web")
	if got := kindsOf(eventLines(t, r.stdout)); got != want {
		t.Fatalf("events --until 0s: %s, want %s", got, want)
	}
	r = e.must("events", "--since", "1h", "--until", "0s", "--filter", "kind=BoxReady", "--format", "table")
	if !strings.Contains(r.stderr, "are not known: the supervisor started then") {
		t.Errorf("a --since before the supervisor started is not reported: %s", r)
	}
	for _, want := range []string{"TIME", "DETAIL", "web", "other", "BoxReady"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("events --format table lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{{"events", "--filter", "kind=Nope"}, {"events", "--since", "yesterday"}, {"events", "--filter", "state=running"}} {
		if r := e.boxsup(args...); r.code != 2 {
			t.Errorf("boxsup %v: want exit 2: %s", args, r)
		}
	}
}

// TestEventsNeedASupervisor: without a boxsup supervise, events fails at
// once and says one is needed (it does not open a supervisor of its own,
// whose events would end with the command).
func TestEventsNeedASupervisor(t *testing.T) {
	e := newEnv(t)
	r := e.boxsup("events")
	if r.code != 1 || !strings.Contains(r.stderr, "boxsup supervise") {
		t.Fatalf("events without a supervisor: %s", r)
	}
}
