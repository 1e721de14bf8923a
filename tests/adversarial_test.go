package tests

// The adversarial suite: another local user (nobody, through setpriv) tries
// to make root's boxsup act on files or sockets it planted. Each case drives
// the real CLI as root, as the attacks were first reproduced, and checks the
// attack's effect did not happen (a file truncated or read, a secret
// received, a process signalled, a command run as root), not only that an
// error was printed.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
)

// adversaryListenEnv makes the test binary, run as nobody, listen on the
// Unix socket named by the value and append whatever it receives to the
// file named after a colon: the planted listener of the secret-capture case.
const adversaryListenEnv = "BOXSUP_ADVERSARY_LISTEN"

func init() {
	if v := os.Getenv(adversaryListenEnv); v != "" {
		os.Exit(adversaryListen(v))
	}
}

// adversaryListen serves one planted socket until killed.
func adversaryListen(v string) int {
	sock, out, _ := strings.Cut(v, ":")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = os.Chmod(sock, 0o777)
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			// Play a supervisor: answer a ping as one would, so that a
			// client that does not check its peer goes on to send its
			// real request (with its secrets), and keep every request.
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 1<<20)).ReadBytes('\n')
			if len(line) == 0 {
				return
			}
			if f, ferr := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666); ferr == nil {
				_, _ = f.Write(line)
				_ = f.Close()
			}
			if err == nil && bytes.Contains(line, []byte(`"op":"ping"`)) {
				_, _ = fmt.Fprintf(c, `{"server":{"pid":%d,"home":"planted","protocol":1}}`+"\n", os.Getpid())
				return
			}
			_, _ = io.WriteString(c, `{"error":{"code":"internal","message":"planted"}}`+"\n")
		}()
	}
}

// adversary is one test's playground: a sticky, world-writable base (like
// /tmp) where nobody may create a home, the CLI and shim built into a
// directory nobody can execute from, and helpers to act as nobody.
type adversary struct {
	t      *testing.T
	base   string
	bin    string // directory of boxsup and boxsup-shim
	home   string // base/home; who creates it is up to the case
	victim string // a root-owned file outside any home, 0600
}

var (
	advBuildOnce sync.Once
	advBinDir    string
	advBuildErr  error
)

const victimContent = "root's precious data: TOPSECRET-7f3a\n"

func newAdversary(t *testing.T) *adversary {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: acts as nobody through setpriv against root's boxsup")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to act as nobody")
	}
	advBuildOnce.Do(func() {
		advBinDir, advBuildErr = os.MkdirTemp("", "boxsup-adv-bin-")
		if advBuildErr != nil {
			return
		}
		_ = os.Chmod(advBinDir, 0o755)
		if advBuildErr = testutil.Build(filepath.Join(advBinDir, "boxsup"), "github.com/boxsup/boxsup/cmd/boxsup", false); advBuildErr != nil {
			return
		}
		if _, advBuildErr = testutil.BuildShim(advBinDir, false); advBuildErr != nil {
			return
		}
		self, err := os.Executable()
		if err != nil {
			advBuildErr = err
			return
		}
		advBuildErr = copyFile(self, filepath.Join(advBinDir, "adversary"), 0o755)
	})
	if advBuildErr != nil {
		t.Fatal(advBuildErr)
	}
	base, err := os.MkdirTemp("", "boxsup-adv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := syscall.Chmod(base, 0o1777); err != nil {
		t.Fatal(err)
	}
	a := &adversary{t: t, base: base, bin: advBinDir, home: filepath.Join(base, "home")}
	vdir := t.TempDir()
	_ = os.Chmod(vdir, 0o755)
	a.victim = filepath.Join(vdir, "victim")
	if err := os.WriteFile(a.victim, []byte(victimContent), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}

// asNobody runs argv as nobody:nogroup with no supplementary groups.
func (a *adversary) asNobody(argv ...string) {
	a.t.Helper()
	cmd := exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}, argv...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		a.t.Fatalf("as nobody %v: %v\n%s", argv, err, out)
	}
}

// nobodySh runs a shell script as nobody.
func (a *adversary) nobodySh(script string) { a.t.Helper(); a.asNobody("/bin/sh", "-ec", script) }

// nobodyHome has nobody create the home (as in a shared BOXSUP_HOME) with
// a box directory, the way root's boxsup would lay it out.
func (a *adversary) nobodyHome() {
	a.t.Helper()
	a.nobodySh(fmt.Sprintf("umask 022; mkdir -p %s/boxes/web", a.home))
}

type cliResult struct {
	code           int
	stdout, stderr string
	timedOut       bool
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d (timed out: %v)\nstdout:\n%s\nstderr:\n%s", r.code, r.timedOut, r.stdout, r.stderr)
}

// boxsup runs the CLI as root on the home, killed after limit.
func (a *adversary) boxsup(limit time.Duration, env []string, args ...string) cliResult {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(a.bin, "boxsup"), append([]string{"--home", a.home}, args...)...)
	cmd.Env = append([]string{"PATH=" + a.bin + ":/usr/bin:/bin", "HOME=/root"}, env...)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), timedOut: ctx.Err() != nil}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil && !r.timedOut {
		a.t.Fatal(err)
	}
	return r
}

func (a *adversary) victimIntact() {
	a.t.Helper()
	b, err := os.ReadFile(a.victim)
	if err != nil || string(b) != victimContent {
		a.t.Errorf("the victim file outside the home changed: %q, %v", b, err)
	}
}

func refusedUnsafe(t *testing.T, what string, r cliResult) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, "unsafe home") {
		t.Errorf("%s: want exit 1 with an unsafe-home refusal, got %s", what, r)
	}
}

// TestAdversaryHomeCreatedByAnotherUserIsRefused: a home nobody created is
// refused by every command, naming the path and the fix, and nothing is
// written into it.
func TestAdversaryHomeCreatedByAnotherUserIsRefused(t *testing.T) {
	a := newAdversary(t)
	a.nobodyHome()
	for _, args := range [][]string{{"ps"}, {"run", "-d", "--", "/bin/true"}, {"supervise"}} {
		r := a.boxsup(30*time.Second, nil, args...)
		refusedUnsafe(t, strings.Join(args, " "), r)
		if !strings.Contains(r.stderr, a.home) || !strings.Contains(r.stderr, "chown") {
			t.Errorf("%v: the refusal does not name the home and the fix: %s", args, r.stderr)
		}
	}
	if _, err := os.Lstat(filepath.Join(a.home, "lock")); err == nil {
		t.Error("a lock file was created in the refused home")
	}
}

// TestAdversaryHomeLinkIsNotFollowed: a symbolic link nobody made in the
// sticky base, pointing at root's real home or at any directory of root's,
// must not be followed: boxsup would act on that home, or create boxes/ and
// a lock where nobody chose.
func TestAdversaryHomeLinkIsNotFollowed(t *testing.T) {
	t.Parallel()
	a := newAdversary(t)
	planted := a.home
	real := filepath.Join(t.TempDir(), "real-home")
	a.home = real
	if r := a.boxsup(30*time.Second, nil, "run", "-d", "--name", "roots-box", "--", "/bin/true"); r.code != 0 {
		t.Fatalf("run -d on root's own home: %s", r)
	}
	someDir := t.TempDir()
	evil2 := filepath.Join(a.base, "evil2")
	a.nobodySh(fmt.Sprintf("ln -s %s %s; ln -s %s %s", real, planted, someDir, evil2))

	for _, link := range []string{planted, evil2} {
		a.home = link
		r := a.boxsup(30*time.Second, nil, "ps")
		refusedUnsafe(t, "ps through nobody's link "+link, r)
		if strings.Contains(r.stdout, "roots-box") {
			t.Errorf("ps through nobody's link %s listed root's real home: %s", link, r.stdout)
		}
		if !strings.Contains(r.stderr, link) || !strings.Contains(r.stderr, "uid 65534") {
			t.Errorf("the refusal does not name the link %s and its owner: %s", link, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(someDir); len(entries) != 0 {
		t.Errorf("boxsup created %v in the directory nobody's link points at", entries)
	}
}

// TestAdversaryLockSymlinkIsNotTruncated (issue 9, item 3): a lock file
// planted as a symbolic link to a root-owned file must not lead boxsup to
// chmod or truncate that file.
func TestAdversaryLockSymlinkIsNotTruncated(t *testing.T) {
	a := newAdversary(t)
	a.nobodyHome()
	a.nobodySh(fmt.Sprintf("ln -s %s %s/lock", a.victim, a.home))
	r := a.boxsup(30*time.Second, nil, "ps")
	refusedUnsafe(t, "ps on a home with a planted lock link", r)
	a.victimIntact()
	if fi, err := os.Stat(a.victim); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("the victim's mode changed to %v", fi.Mode().Perm())
	}
}

// TestAdversaryPlantedListenerGetsNoSecret (issue 9, item 4): a listener
// nobody put on the home's control socket must receive nothing, in
// particular not the secret of a run -d.
func TestAdversaryPlantedListenerGetsNoSecret(t *testing.T) {
	const secret = "adversary-sentinel-secret-9c41"
	for _, variant := range []string{"home of nobody", "socket moved into root's home"} {
		t.Run(variant, func(t *testing.T) {
			a := newAdversary(t)
			received := filepath.Join(a.base, "received")
			var sock string
			if variant == "home of nobody" {
				a.nobodyHome()
				sock = filepath.Join(a.home, "boxsup.sock")
			} else {
				// root's own, trusted home, where a socket nobody listens on
				// ended up (planted through a directory that was once
				// writable): the client must check who serves it.
				if err := os.Mkdir(a.home, 0o700); err != nil {
					t.Fatal(err)
				}
				if r := a.boxsup(30*time.Second, nil, "ps"); r.code != 0 {
					t.Fatalf("ps on a fresh home: %s", r)
				}
				a.nobodySh("mkdir " + filepath.Join(a.base, "nobody"))
				sock = filepath.Join(a.base, "nobody", "s")
			}
			listener := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
				filepath.Join(a.bin, "adversary"))
			listener.Env = []string{adversaryListenEnv + "=" + sock + ":" + received}
			out, err := listener.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := listener.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = listener.Process.Kill(); _ = listener.Wait() })
			if line, err := readLine(out); err != nil || line != "listening" {
				t.Fatalf("the planted listener did not start: %q %v", line, err)
			}
			if variant != "home of nobody" {
				if err := os.Rename(sock, filepath.Join(a.home, "boxsup.sock")); err != nil {
					t.Fatal(err)
				}
			}
			r := a.boxsup(30*time.Second, []string{"TOKEN=" + secret}, "run", "-d", "--secret-env", "TOKEN", "--", "/bin/sleep", "1")
			refusedUnsafe(t, "run -d against a planted listener", r)
			switch b, _ := os.ReadFile(received); {
			case bytes.Contains(b, []byte(secret)):
				t.Errorf("the planted listener captured the secret: %q", b)
			case len(b) > 0:
				t.Errorf("the planted listener received %q", b)
			}
		})
	}
}

func readLine(r io.Reader) (string, error) {
	var b [64]byte
	n, err := r.Read(b[:])
	return strings.TrimSpace(string(b[:n])), err
}

// TestAdversaryLogLinksAreNotFollowed (issue 9, item 5): a shim.log or
// console.log that is a symbolic link is neither appended to as root nor
// printed by logs.
func TestAdversaryLogLinksAreNotFollowed(t *testing.T) {
	t.Run("home of nobody", func(t *testing.T) {
		a := newAdversary(t)
		a.nobodyHome()
		a.nobodySh(fmt.Sprintf(`cd %s/boxes/web
ln -s %s console.log
ln -s %s shim.log`, a.home, a.victim, a.victim))
		r := a.boxsup(30*time.Second, nil, "logs", "web")
		refusedUnsafe(t, "logs", r)
		if strings.Contains(r.stdout+r.stderr, "TOPSECRET") {
			t.Errorf("logs printed the link's target: %s", r)
		}
		a.victimIntact()
	})
	t.Run("links in root's home", func(t *testing.T) {
		a := newAdversary(t)
		if err := os.Mkdir(a.home, 0o700); err != nil {
			t.Fatal(err)
		}
		if r := a.boxsup(60*time.Second, nil, "run", "--name", "web", "--", "/bin/sh", "-c", "echo hello"); r.code != 0 {
			t.Fatalf("run: %s", r)
		}
		dir := filepath.Join(a.home, "boxes", "web")
		for _, name := range []string{"console.log", "shim.log"} {
			_ = os.Remove(filepath.Join(dir, name))
			if err := os.Symlink(a.victim, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		r := a.boxsup(30*time.Second, nil, "logs", "web")
		if r.code == 0 || strings.Contains(r.stdout+r.stderr, "TOPSECRET") || !strings.Contains(r.stderr, "symbolic link") {
			t.Errorf("logs on a console.log link: want a refusal, got %s", r)
		}
		r = a.boxsup(60*time.Second, nil, "start", "web")
		if r.code == 0 {
			t.Errorf("start with a shim.log link: want a refusal, got %s", r)
		}
		a.victimIntact()
		a.boxsup(60*time.Second, nil, "rm", "-f", "web")
	})
}

// TestAdversaryFrozenSupervisorGivesAClearError (issue 9, item 9): with
// supervise stopped by SIGSTOP, commands fail within their deadline with an
// error that says so, instead of hanging.
func TestAdversaryFrozenSupervisorGivesAClearError(t *testing.T) {
	a := newAdversary(t)
	if err := os.Mkdir(a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	sup := exec.Command(filepath.Join(a.bin, "boxsup"), "--home", a.home, "supervise")
	sup.Env = []string{"PATH=" + a.bin + ":/usr/bin:/bin", "HOME=/root"}
	var supLog testutil.SyncBuffer
	sup.Stderr = &supLog
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sup.Process.Signal(syscall.SIGCONT)
		_ = sup.Process.Signal(syscall.SIGTERM)
		_ = sup.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(supLog.String(), `msg=supervising`) {
		if time.Now().After(deadline) {
			t.Fatalf("supervise did not come up:\n%s", supLog.String())
		}
		time.Sleep(50 * time.Millisecond) // polling an external fact: the supervisor's start
	}
	if r := a.boxsup(30*time.Second, nil, "ps"); r.code != 0 {
		t.Fatalf("ps through supervise: %s", r)
	}
	if err := sup.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(sup.Process.Pid)
	for _, args := range [][]string{{"ps"}, {"stop", "web"}, {"run", "-d", "--", "/bin/true"}} {
		began := time.Now()
		r := a.boxsup(45*time.Second, nil, args...)
		took := time.Since(began)
		if r.timedOut || r.code != 1 || !strings.Contains(r.stderr, "did not answer") || !strings.Contains(r.stderr, pid) {
			t.Errorf("%v against a frozen supervisor (pid %s) after %v: %s", args, pid, took.Round(time.Millisecond), r)
		}
	}
}

// TestAdversaryPlantedRestartingStateIsNotRun (issue 9, item 1): a spec and
// a "restarting" state planted by nobody must not make root's supervise run
// the planted command.
func TestAdversaryPlantedRestartingStateIsNotRun(t *testing.T) {
	a := newAdversary(t)
	a.nobodyHome()
	marker := filepath.Join(a.base, "ran-as-root")
	a.plantBox(`"restarting"`, fmt.Sprintf(`"/bin/sh", "args": ["-c", "id -u > %s"]`, marker), "")
	r := a.boxsup(20*time.Second, nil, "supervise")
	refusedUnsafe(t, "supervise on a planted home", r)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the planted command ran as root")
	}
}

// TestAdversaryIdentityCopiedFromProcIsNotSignalled (issue 9, item 2): a
// state.json naming an unrelated process (pid, start time and boot id copied
// from /proc) must not get it signalled by a read-only ps.
func TestAdversaryIdentityCopiedFromProcIsNotSignalled(t *testing.T) {
	a := newAdversary(t)
	a.nobodyHome()
	victim := exec.Command("/bin/sleep", "300")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", victim.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	identity := fmt.Sprintf(`{"pid": %d, "start_time": %s, "boot_id": %q}`,
		victim.Process.Pid, fields[19], strings.TrimSpace(string(boot)))
	a.plantBox(`"running"`, `"/bin/sleep"`, identity)
	r := a.boxsup(30*time.Second, nil, "ps")
	refusedUnsafe(t, "ps on a planted home", r)
	var ws syscall.WaitStatus
	if pid, _ := syscall.Wait4(victim.Process.Pid, &ws, syscall.WNOHANG, nil); pid != 0 {
		t.Errorf("the unrelated process was signalled: %v", ws)
	}
}

// plantBox has nobody write boxes/web/spec.json and state.json (mode 0600,
// as boxsup writes them) with the given state, executable (a JSON value and
// optional sibling fields) and identity.
func (a *adversary) plantBox(state, executable, identity string) {
	a.t.Helper()
	if identity == "" {
		identity = `{"pid": 0, "start_time": 0, "boot_id": ""}`
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	spec := fmt.Sprintf(`{"id": "web", "spec": {"version": 1, "engine": "process", "box_id": "web",
  "guest_entrypoint": {"executable": %s}, "detach": true},
  "restart": {"mode": "always"}, "stop_timeout": 1000000000, "ready_timeout": 10000000000}`, executable)
	st := fmt.Sprintf(`{"id": "web", "state": %s, "generation": 1, "identity": %s, "restarts": 0,
  "created_at": %q, "updated_at": %q}`, state, identity, now, now)
	dir := filepath.Join(a.home, "boxes", "web")
	a.nobodySh(fmt.Sprintf("umask 077; cat > %s/spec.json <<'EOF'\n%s\nEOF\ncat > %s/state.json <<'EOF'\n%s\nEOF", dir, spec, dir, st))
}
