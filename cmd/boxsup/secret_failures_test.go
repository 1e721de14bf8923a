package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// A sentinel secret is carried through every failure path of a box: none
// of them may put it in a log (the supervisor's, at trace; every command's,
// at trace), a command's output, a file of the home other than spec.json
// (which must hold it, mode 0600), or the argv or environment of a process
// of the home (a guest's environment excepted: the secret is meant for it).

// secretEnvName carries each case's sentinel into boxsup's environment;
// run takes it with --secret-env E2E_SECRET (no value on the command line).
const secretEnvName = "E2E_SECRET"

// secretRun is one failure path's run.
type secretRun struct {
	t        *testing.T
	e        *env
	sentinel string
	outputs  map[string]string // command (or client call) → what it printed
}

// cli runs boxsup at trace with the sentinel in its environment and keeps
// what it printed.
func (s *secretRun) cli(args ...string) result {
	s.t.Helper()
	r := runBoxsup(s.t, []string{secretEnvName + "=" + s.sentinel},
		append([]string{"--home", s.e.home, "--log-level", "trace"}, args...)...)
	s.outputs[fmt.Sprintf("boxsup %s (#%d)", strings.Join(args, " "), len(s.outputs))] = r.stdout + r.stderr
	return r
}

// client dials the supervisor's control socket.
func (s *secretRun) client() *control.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	c, err := control.Dial(ctx, s.e.sup.socket)
	if err != nil {
		s.t.Fatalf("dial %s: %v", s.e.sup.socket, err)
	}
	return c
}

// keep records what a client call returned.
func (s *secretRun) keep(what string, st messages.BoxStatus, err error) {
	raw, _ := json.Marshal(st)
	s.outputs[what] = fmt.Sprintf("%s\n%v", raw, err)
}

// raw sends one line on the control socket and returns the reply line; a
// truncated request is followed by the end of what the client sends.
func (s *secretRun) raw(what, line string, truncated bool) string {
	s.t.Helper()
	conn, err := net.Dial("unix", s.e.sup.socket)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(commandTimeout))
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		s.t.Fatal(err)
	}
	if truncated {
		_ = conn.(*net.UnixConn).CloseWrite()
	}
	reply, _ := bufio.NewReader(conn).ReadString('\n')
	s.outputs[what] = reply
	return reply
}

// secretSpec is a detached box whose guest gets the sentinel as a secret.
func (s *secretRun) secretSpec(id string, argv ...string) messages.StartBox {
	return messages.StartBox{
		ID: id, Detach: true,
		Spec: messages.InstanceSpec{
			GuestEntrypoint: messages.Entrypoint{Executable: argv[0], Args: argv[1:], Env: []string{markEnv + "=" + binDir}},
			Secrets:         []messages.SecretVar{{Name: secretEnvName, Value: messages.NewSecret(s.sentinel)}},
		},
	}
}

// secretCases are the failure paths.
var secretCases = []struct {
	name string
	// disk puts the home on a small tmpfs the case can fill.
	disk bool
	run  func(s *secretRun, disk *testutil.SmallDisk)
}{
	{name: "bad executable", run: func(s *secretRun, _ *testutil.SmallDisk) {
		// The secret is part of the executable's path: refused before
		// anything exists, naming the field and not the value.
		r := s.cli("run", "-d", "--name", "inpath", "--secret-env", secretEnvName, "--", "/nonexistent/"+s.sentinel+"/prog")
		if r.code != 1 || !strings.Contains(r.stderr, "guest_entrypoint.executable: holds the value of secret "+secretEnvName) {
			s.t.Fatalf("run -d with the secret in the executable's path: %s; want exit 1 and the refusal", r)
		}
		r = s.cli("run", "-d", "--name", "badexe", "--secret-env", secretEnvName, "--", "/nonexistent/prog")
		if r.code != 1 {
			s.t.Fatalf("run -d of a missing executable: %s; want exit 1", r)
		}
		s.cli("ps", "-a", "--format", "json")
		s.cli("start", "badexe") // fails again, the same way
		s.cli("logs", "badexe")
	}},
	{name: "spawn error", run: func(s *secretRun, _ *testutil.SmallDisk) {
		// A working directory that does not exist fails the guest's setup
		// inside the shim.
		r := s.cli("run", "-d", "--name", "badwd", "--secret-env", secretEnvName, "-w", "/nonexistent/wd", "--", "/bin/true")
		if r.code != 1 {
			s.t.Fatalf("run -d with a missing workdir: %s; want exit 1", r)
		}
		s.cli("ps", "-a", "--format", "json")
		// A shim that dies at once, without reading its spec: the spawn
		// itself fails. --shim needs the home without a supervisor.
		fake := filepath.Join(s.t.TempDir(), "dying-shim")
		script := "#!/bin/sh\n[ \"$1\" = --capabilities ] && exec " + shimBin + " --capabilities\nexit 3\n"
		if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
			s.t.Fatal(err)
		}
		s.e.sup.stop()
		r = s.cli("--shim", fake, "run", "-d", "--name", "deadshim", "--secret-env", secretEnvName, "--", "/bin/true")
		if r.code != 1 || !strings.Contains(r.stderr, "exit 3") {
			s.t.Fatalf("run -d with a shim that dies at once: %s; want exit 1 naming its exit", r)
		}
		s.cli("ps", "-a", "--format", "json")
	}},
	{name: "ready timeout", run: func(s *secretRun, _ *testutil.SmallDisk) {
		// The guest never connects to its ready socket.
		req := s.secretSpec("late", "/bin/sleep", "300")
		req.Spec.ReadyTransport = filepath.Join(s.t.TempDir(), "ready.sock")
		req.ReadyTimeout = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		st, err := s.client().Start(ctx, req)
		s.keep("client start (ready timeout)", st, err)
		if !errors.Is(err, messages.ErrReadyTimeout) {
			s.t.Fatalf("start with a silent ready socket: %v; want ErrReadyTimeout", err)
		}
		s.cli("ps", "-a", "--format", "json")
	}},
	{name: "persist error", disk: true, run: func(s *secretRun, disk *testutil.SmallDisk) {
		r := s.cli("run", "-d", "--name", "full", "--secret-env", secretEnvName, "-e", markEnv, "--", "/bin/sleep", "300")
		if r.code != 0 {
			s.t.Fatalf("run -d: %s", r)
		}
		disk.Fill()
		if r := s.cli("stop", "full"); r.code != 1 || !strings.Contains(r.stderr, "not written to disk") {
			s.t.Fatalf("stop on a full disk: %s; want exit 1 and the persist error", r)
		}
		if r := s.cli("run", "-d", "--name", "nospace", "--secret-env", secretEnvName, "--", "/bin/true"); r.code == 0 {
			s.t.Fatalf("run -d on a full disk: %s", r)
		}
		disk.Free()
		eventually(s.t, "the exit to be written once space is back", func() bool {
			state, _ := recordedState(s.t, s.e.home, "full")
			return state == "exited"
		})
	}},
	{name: "adoption mismatch", run: func(s *secretRun, _ *testutil.SmallDisk) {
		r := s.cli("run", "-d", "--name", "adopted", "--secret-env", secretEnvName, "-e", markEnv, "--", "/bin/true")
		if r.code != 0 {
			s.t.Fatalf("run -d: %s", r)
		}
		eventually(s.t, "the box to exit", func() bool { return s.e.ps()["adopted"].State == "exited" })
		// A process that is not a shim of the box is handed over.
		other := exec.Command("/bin/sleep", "300")
		other.Env = []string{markEnv + "=" + binDir}
		if err := other.Start(); err != nil {
			s.t.Fatal(err)
		}
		defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		st, err := s.client().Adopt(ctx, "adopted", other.Process.Pid)
		s.keep("client adopt (mismatch)", st, err)
		if !errors.Is(err, messages.ErrIdentityMismatch) {
			s.t.Fatalf("Adopt of a process that is no shim of the box: %v; want ErrIdentityMismatch", err)
		}
		if !processAlive(other.Process.Pid) {
			s.t.Fatal("the mismatched process was signalled")
		}
	}},
	{name: "control-socket errors", run: func(s *secretRun, _ *testutil.SmallDisk) {
		// A request cut in the middle, after the secret.
		s.raw("raw: truncated", `{"op":"start","start":{"id":"cut","spec":{"secrets":[{"name":"X","value":"`+s.sentinel+`"`, true)
		// A start refused by validation, with the secret where a value is
		// malformed (an environment entry without '=').
		bad := s.secretSpec("badenv", "/bin/true")
		bad.Spec.GuestEntrypoint.Env = append(bad.Spec.GuestEntrypoint.Env, s.sentinel)
		line, _ := json.Marshal(control.Request{Op: control.OpStart, Start: &bad})
		s.raw("raw: bad env", string(line), false)
		// Starts refused by validation before the box exists, with the
		// secret in a field whose refusal used to quote it (a relative
		// work_dir, a box_id that does not match), and in a label.
		rel := s.secretSpec("relwd", "/bin/true")
		rel.Spec.GuestEntrypoint.WorkDir = "rel/" + s.sentinel
		line, _ = json.Marshal(control.Request{Op: control.OpStart, Start: &rel})
		if reply := s.raw("raw: secret in a relative work_dir", string(line), false); !strings.Contains(reply, "guest_entrypoint.work_dir: holds the value of secret") {
			s.t.Errorf("a secret in work_dir: reply %q; want the refusal naming the field", reply)
		}
		mismatch := s.secretSpec("mismatch", "/bin/true")
		mismatch.Spec.BoxID = s.sentinel
		line, _ = json.Marshal(control.Request{Op: control.OpStart, Start: &mismatch})
		s.raw("raw: secret as the spec's box_id", string(line), false)
		// The secret as the box's ID: refused, and the server's log line
		// for the request (box_id=...) must not show it either.
		named := s.secretSpec(s.sentinel, "/bin/true")
		line, _ = json.Marshal(control.Request{Op: control.OpStart, ID: s.sentinel, Start: &named})
		s.raw("raw: secret as the box ID", string(line), false)
		labelled := s.secretSpec("labelled", "/bin/true")
		labelled.Labels = map[string]string{"token": s.sentinel}
		line, _ = json.Marshal(control.Request{Op: control.OpStart, Start: &labelled})
		s.raw("raw: secret in a label", string(line), false)
		// An unknown operation that carries a secret.
		odd := s.secretSpec("odd", "/bin/true")
		line, _ = json.Marshal(control.Request{Op: "frobnicate", Start: &odd})
		s.raw("raw: unknown op", string(line), false)
		// A start of an ID that exists, and a client that hangs up
		// before its start is answered.
		if r := s.cli("run", "-d", "--name", "twice", "--secret-env", secretEnvName, "-e", markEnv, "--", "/bin/sleep", "300"); r.code != 0 {
			s.t.Fatalf("run -d: %s", r)
		}
		if r := s.cli("run", "-d", "--name", "twice", "--secret-env", secretEnvName, "--", "/bin/true"); r.code != 1 {
			s.t.Fatalf("run -d of an existing ID: %s; want exit 1", r)
		}
		hup := s.secretSpec("hangup", "/bin/sleep", "300")
		line, _ = json.Marshal(control.Request{Op: control.OpStart, Start: &hup})
		conn, err := net.Dial("unix", s.e.sup.socket)
		if err != nil {
			s.t.Fatal(err)
		}
		_, _ = conn.Write(append(line, '\n'))
		_ = conn.Close()
		eventually(s.t, "the hung-up start to be settled", func() bool {
			row, ok := s.e.ps()["hangup"]
			return !ok || row.State != "starting"
		})
	}},
}

// TestSecretThroughEveryFailurePath runs each failure path with its own
// sentinel against a supervise at trace, then looks for the sentinel
// everywhere.
func TestSecretThroughEveryFailurePath(t *testing.T) {
	for i, tc := range secretCases {
		t.Run(tc.name, func(t *testing.T) {
			var disk *testutil.SmallDisk
			if tc.disk {
				disk = testutil.MountSmallDisk(t, "2m") // unmounted after the env's cleanups
			}
			e := newEnv(t)
			if disk != nil {
				e.home = filepath.Join(disk.Dir, "home")
				t.Cleanup(disk.Free) // before the env's cleanups, which write
			}
			e.sup = startSupervise(t, e.home, "--log-level", "trace")
			s := &secretRun{t: t, e: e, sentinel: fmt.Sprintf("s3ntinel-%d-%d-Qx7", i, os.Getpid()), outputs: map[string]string{}}
			tc.run(s, disk)
			s.outputs["supervise log"] = e.sup.log.String()
			if !strings.Contains(s.outputs["supervise log"], `"level":"trace"`) {
				t.Error("the supervisor logged nothing at trace: the search below would prove little")
			}
			for what, text := range s.outputs {
				if strings.Contains(text, s.sentinel) {
					t.Errorf("the secret leaked into %s:\n%s", what, text)
				}
			}
			s.checkHomeFiles()
			s.checkProcesses()
		})
	}
}

// checkHomeFiles looks at every file of the home: spec.json holds the
// secret (when the box's spec got written) with mode 0600; no other file
// holds it.
func (s *secretRun) checkHomeFiles() {
	s.t.Helper()
	holders := 0
	err := filepath.WalkDir(s.e.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "spec.json" {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				s.t.Errorf("%s: mode %v (%v), want 0600: it holds a secret", path, fi.Mode().Perm(), err)
			}
			if strings.Contains(string(raw), s.sentinel) {
				holders++
			}
			return nil
		}
		if strings.Contains(string(raw), s.sentinel) {
			s.t.Errorf("the secret leaked into %s:\n%s", path, raw)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("walking the home: %v", err)
	}
	if holders == 0 {
		s.t.Error("no spec.json holds the secret: the case did not carry it where a box keeps it")
	}
}

// checkProcesses looks at the argv of every process of the test and the
// environment of every boxsup and shim process.
func (s *secretRun) checkProcesses() {
	s.t.Helper()
	entries, _ := os.ReadDir("/proc")
	mark := []byte(markEnv + "=" + binDir + "\x00")
	checked := 0
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", ent.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		ours := argv0 == boxsupBin || argv0 == shimBin
		if !ours && !strings.Contains(string(environ), string(mark)) {
			continue
		}
		checked++
		if strings.Contains(string(cmdline), s.sentinel) {
			s.t.Errorf("the secret is in the argv of pid %d: %q", pid, cmdline)
		}
		if ours && strings.Contains(string(environ), s.sentinel) {
			s.t.Errorf("the secret is in the environment of %s (pid %d)", argv0, pid)
		}
	}
	if checked == 0 && !s.e.sup.exited() {
		s.t.Error("no process of the home was found: the supervisor at least should be")
	}
}
