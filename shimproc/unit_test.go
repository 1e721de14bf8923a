package shimproc

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	rest := "S 41 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100"
	raw := []byte("4242 (we(ird) name) ) " + rest + " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
	st, err := parseProcStat(4242, raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStat{State: 'S', PPID: 41, PGID: 42, StartTime: 987654}); st != want {
		t.Errorf("parseProcStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S a b c d e f g h i j k l m n o p q r s t u"} {
		if _, err := parseProcStat(1, []byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

func TestReadIdentityOfSelf(t *testing.T) {
	id, err := ReadIdentity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if id.PID != os.Getpid() || id.StartTime == 0 || id.BootID != strings.TrimSpace(string(raw)) {
		t.Errorf("ReadIdentity(self) = %+v", id)
	}
	// The wall-clock start agrees with gopsutil's (which has 1 s precision:
	// it adds whole-second btime).
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.CreateTime()
	if err != nil {
		t.Fatal(err)
	}
	got, want := startTimeToWall(id.StartTime), time.UnixMilli(ms)
	if d := got.Sub(want); d < -1500*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("startTimeToWall = %v, gopsutil says %v", got, want)
	}
	if _, err := ReadIdentity(0); !errors.Is(err, ErrGone) {
		t.Errorf("ReadIdentity(0) = %v, want ErrGone", err)
	}
}

func TestShimEnv(t *testing.T) {
	spec := messages.InstanceSpec{
		Secrets: []messages.SecretVar{
			{Name: "TOKEN", Value: messages.NewSecret("tok-123456")},
			{Name: "PIN", Value: messages.NewSecret("42")},
		},
		NetworkConfig: &messages.NetworkConfig{CAKeyPEM: messages.NewSecret("pem-body-xyz")},
	}
	unregister := logging.RegisterSecrets("another-box-secret")
	defer unregister()
	environ := []string{
		"PATH=/bin",
		"TOKEN=unrelated",              // a secret's name
		"WRAPPED=a-tok-123456-b",       // holds a secret value
		"KEY=pem-body-xyz",             // the CA key
		"ANSWER=42",                    // a short secret, exact value
		"YEAR=2042",                    // a short secret inside other text: kept
		"OTHER=x another-box-secret x", // a secret registered elsewhere
		"EMPTY=",
	}
	got := strings.Join(shimEnv(environ, &spec), " ")
	if want := "PATH=/bin YEAR=2042 EMPTY="; got != want {
		t.Errorf("shimEnv = %q, want %q", got, want)
	}
	if env := shimEnv(nil, &spec); env == nil {
		t.Error("shimEnv must never be nil: os/exec would pass the whole environment")
	}
}

func TestRedactSecrets(t *testing.T) {
	got := redactSecrets("exec failed: /x/tok-123456/y (ab)", []string{"tok-123456", "ab"})
	if want := "exec failed: /x/" + messages.Redacted + "/y (ab)"; got != want {
		t.Errorf("redactSecrets = %q, want %q", got, want)
	}
	err := redactError(messages.Errorf(messages.ErrStartFailed, "bad tok-123456"), []string{"tok-123456"})
	if !errors.Is(err, messages.ErrStartFailed) || strings.Contains(err.Error(), "tok-123456") {
		t.Errorf("redactError = %v: want the code kept and the secret gone", err)
	}
}

// exitHandle is a Handle with just what settleExit reads.
func exitHandle(t *testing.T) *Handle {
	return &Handle{box: newBox(t, "exit"), startedAt: time.Now(), log: discardLogger}
}

func TestSettleExit(t *testing.T) {
	exitedWith := func(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }
	killedBy := func(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }

	t.Run("exit.json of this run wins", func(t *testing.T) {
		h := exitHandle(t)
		rec := messages.ExitRecord{ExitCode: 3, Reason: "exited", FinishedAt: time.Now()}
		writeExit(t, h, rec)
		got := h.settleExit(exitedWith(3), true)
		if got.ExitCode != 3 || got.Source != messages.SourceExitFile || got.Reason != "exited" {
			t.Errorf("settleExit = %+v", got)
		}
	})
	t.Run("stale exit.json is ignored", func(t *testing.T) {
		h := exitHandle(t)
		writeExit(t, h, messages.ExitRecord{ExitCode: 0, Reason: "exited", FinishedAt: h.startedAt.Add(-time.Hour)})
		got := h.settleExit(killedBy(unix.SIGKILL), true)
		if got.Signal != "SIGKILL" || got.ExitCode != 137 || got.Source != messages.SourceWait || got.Reason != "killed" {
			t.Errorf("settleExit = %+v, want the wait status's SIGKILL", got)
		}
	})
	t.Run("exit code without exit.json", func(t *testing.T) {
		h := exitHandle(t)
		got := h.settleExit(exitedWith(125), true)
		if got.ExitCode != 125 || got.Signal != "" || got.Source != messages.SourceWait {
			t.Errorf("settleExit = %+v", got)
		}
	})
	t.Run("adopted without exit.json", func(t *testing.T) {
		h := exitHandle(t)
		got := h.settleExit(0, false)
		if got.Known() || got.Source != messages.SourceNone || got.Reason != "unknown (no exit record)" {
			t.Errorf("settleExit = %+v, want unknown", got)
		}
	})
	t.Run("corrupt exit.json", func(t *testing.T) {
		h := exitHandle(t)
		if err := os.WriteFile(h.box.ExitPath(), []byte("{trunc"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := h.settleExit(exitedWith(1), true); got.ExitCode != 1 || got.Source != messages.SourceWait {
			t.Errorf("settleExit = %+v", got)
		}
	})
	if got := signalName(unix.Signal(64)); got != "SIG64" {
		t.Errorf("signalName(64) = %q", got)
	}
}

func writeExit(t *testing.T, h *Handle, rec messages.ExitRecord) {
	t.Helper()
	if err := layout.WriteJSON(h.box.ExitPath(), rec, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSocketPath(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	file := filepath.Join(dir, "file")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sock, link); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]error{
		"":                         nil,
		filepath.Join(dir, "none"): nil,
		sock:                       nil,
		file:                       messages.ErrNotSocket,
		dir:                        messages.ErrNotSocket,
		link:                       messages.ErrNotSocket, // never follow a link to remove its target
	} {
		stale, err := checkSocketPath("transport", path)
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("checkSocketPath(%q) = %v, want %v", path, err, want)
		}
		if wantStale := path == sock; stale != wantStale {
			t.Errorf("checkSocketPath(%q) stale = %v", path, stale)
		}
	}
}

func TestValidCgroupParent(t *testing.T) {
	for _, ok := range []string{"boxsup", "boxsup/abc123", "a.b/c_d"} {
		if err := validCgroupParent(ok); err != nil {
			t.Errorf("validCgroupParent(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/abs", "../up", "a/../../b", "a//b", "a/./b", "a/"} {
		if err := validCgroupParent(bad); !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("validCgroupParent(%q) = %v, want ErrBadSpec", bad, err)
		}
	}
}

func TestDescribeExit(t *testing.T) {
	if got := describeExit(messages.ExitRecord{ExitCode: 127, Reason: "exec failed: x"}, true); got != "exit 127 (exec failed: x)" {
		t.Errorf("describeExit = %q", got)
	}
	if got := describeExit(messages.ExitRecord{}, false); !strings.Contains(got, "did not exit") {
		t.Errorf("describeExit(not exited) = %q", got)
	}
}
