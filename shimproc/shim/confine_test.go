package shim_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// A guest given a uid and gid runs as them, without the supervisor's
// supplementary groups, and with no_new_privs; given groups, it has exactly
// those. As a shell sees it too (id, ulimit, /proc/self/status).
func TestGuestIdentity(t *testing.T) {
	testutil.RequireRoot(t, "the shim can only change a guest's identity or create namespaces as root")
	t.Run("uid and gid", func(t *testing.T) {
		t.Parallel()
		dir := openDir(t)
		spec := reportSpec(t, dir, "ident")
		spec.Security.UID, spec.Security.GID = 65534, 65534
		rep := runReport(t, dir, spec)
		if rep.UID != 65534 || rep.GID != 65534 || len(rep.Groups) != 0 {
			t.Errorf("guest uid %d gid %d groups %v, want 65534 65534 and no supplementary group", rep.UID, rep.GID, rep.Groups)
		}
		if rep.NoNewPrivs != "1" {
			t.Errorf("NoNewPrivs = %q, want 1 for a guest that is not root", rep.NoNewPrivs)
		}
	})
	t.Run("groups", func(t *testing.T) {
		t.Parallel()
		dir := openDir(t)
		spec := reportSpec(t, dir, "groups")
		spec.Security.UID, spec.Security.GID, spec.Security.Groups = 65534, 4242, []uint32{100, 4243}
		rep := runReport(t, dir, spec)
		slices.Sort(rep.Groups)
		if rep.GID != 4242 || !slices.Equal(rep.Groups, []int{100, 4243}) {
			t.Errorf("guest gid %d groups %v, want 4242 and [100 4243]", rep.GID, rep.Groups)
		}
	})
	t.Run("as a shell sees it", func(t *testing.T) {
		requireSeccomp(t)
		t.Parallel()
		dir := openDir(t)
		out := filepath.Join(dir, "out")
		spec := newSpec(dir, "shell", "sh", "-c",
			`{ id -u; id -g; ulimit -n; ulimit -f; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; } > `+out)
		spec.Security = messages.SecurityOptions{UID: 65534, GID: 65534, MaxOpenFiles: 64, MaxFileSize: 1 << 20, Seccomp: true}
		r := startShim(t, dir, spec, launch{})
		if !r.readReady() || r.wait() != 0 {
			t.Fatalf("guest failed; log:\n%s\nconsole:\n%s", r.log(), readFile(t, spec.ConsoleOutput))
		}
		// dash and bash count ulimit -f in 512- and 1024-byte blocks.
		got := strings.Fields(readFile(t, out))
		if len(got) != 8 || got[0] != "65534" || got[1] != "65534" || got[2] != "64" ||
			(got[3] != "2048" && got[3] != "1024") || got[5] != "1" || got[7] != "2" {
			t.Errorf("the guest's shell saw %q, want uid 65534, gid 65534, nofile 64, 1 MiB fsize, NoNewPrivs 1, Seccomp 2", got)
		}
	})
}

// rlimits: soft and hard are both the spec's value, and a write past the
// file size limit fails (EFBIG) instead of growing the file.
func TestGuestRlimits(t *testing.T) {
	t.Parallel()
	dir := openDir(t)
	spec := reportSpec(t, dir, "limits")
	spec.Security.MaxOpenFiles, spec.Security.MaxFileSize, spec.Security.MaxProcesses = 64, 1<<20, 50
	rep := runReport(t, dir, spec)
	if rep.NoFile != [2]uint64{64, 64} || rep.FSize != [2]uint64{1 << 20, 1 << 20} || rep.NProc != [2]uint64{50, 50} {
		t.Errorf("nofile %v fsize %v nproc %v, want [64 64] [1048576 1048576] [50 50]", rep.NoFile, rep.FSize, rep.NProc)
	}
	if rep.BigWrite != syscall.EFBIG.Error() {
		t.Errorf("writing 2 MiB under a 1 MiB limit: %q, want %q", rep.BigWrite, syscall.EFBIG.Error())
	}
	if rep.NoNewPrivs != "0" && os.Geteuid() == 0 {
		t.Errorf("NoNewPrivs = %q for a root guest that did not ask for it, want 0", rep.NoNewPrivs)
	}
}

// A guest that stays root gets no_new_privs only when it asks for it.
func TestNoNewPrivsForRoot(t *testing.T) {
	t.Parallel()
	dir := openDir(t)
	spec := reportSpec(t, dir, "nnp")
	spec.Security.NoNewPrivs = true
	if rep := runReport(t, dir, spec); rep.NoNewPrivs != "1" {
		t.Errorf("NoNewPrivs = %q, want 1", rep.NoNewPrivs)
	}
}

// The default seccomp profile: the filter is on (Seccomp: 2), a denied call
// fails with EPERM and clone3 looks absent (ENOSYS, so that libc uses
// clone); without the profile the same calls succeed or fail on their own.
func TestSeccompDefaultProfile(t *testing.T) {
	requireSeccomp(t)
	cases := []struct {
		name                      string
		sec                       messages.SecurityOptions
		seccomp, personality, cl3 string
	}{
		{"root guest", messages.SecurityOptions{Seccomp: true}, "2", syscall.EPERM.Error(), syscall.ENOSYS.Error()},
		{"guest of another uid", messages.SecurityOptions{Seccomp: true, UID: 65534, GID: 65534}, "2", syscall.EPERM.Error(), syscall.ENOSYS.Error()},
		{"no profile (control)", messages.SecurityOptions{MaxOpenFiles: 256}, "0", "ok", syscall.EINVAL.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.sec.UID != 0 {
				testutil.RequireRoot(t, "the shim can only change a guest's identity or create namespaces as root")
			}
			dir := openDir(t)
			spec := reportSpec(t, dir, "seccomp")
			spec.Security = tc.sec
			rep := runReport(t, dir, spec)
			if rep.Seccomp != tc.seccomp || rep.Personality != tc.personality || rep.Clone3 != tc.cl3 {
				t.Errorf("Seccomp %q, personality(ADDR_NO_RANDOMIZE) %q, clone3 %q; want %q, %q, %q",
					rep.Seccomp, rep.Personality, rep.Clone3, tc.seccomp, tc.personality, tc.cl3)
			}
		})
	}
}

// new_pid_ns: the guest is PID 1 of its namespace and its /proc shows that
// namespace only.
func TestNewPIDNamespace(t *testing.T) {
	requireNamespace(t, "pid")
	requireNamespace(t, "mnt")
	t.Parallel()
	dir := openDir(t)
	spec := reportSpec(t, dir, "pidns")
	spec.Security.NewPIDNS = true
	rep := runReport(t, dir, spec)
	if rep.PID != 1 || !slices.Equal(rep.ProcPIDs, []int{1}) {
		t.Errorf("guest pid %d, /proc lists %v; want 1 and [1]", rep.PID, rep.ProcPIDs)
	}
	if self := strconv.Itoa(os.Getpid()); !fileExists("/proc/" + self) {
		t.Error("the guest's /proc mount reached the host's mount namespace")
	}
}

// Killing the guest, PID 1 of its namespace, kills every process in it: the
// kernel tears the namespace down. The shim stays outside as its parent.
func TestKillingThePIDNamespaceInit(t *testing.T) {
	requireNamespace(t, "pid")
	t.Parallel()
	dir := openDir(t)
	spec := newSpec(dir, "pidns-kill", "sh", "-c", "sleep 300 & exec sleep 301")
	spec.Security.NewPIDNS = true
	r := startShim(t, dir, spec, launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	guest := r.guestPID()
	var orphan int
	waitFor(t, "the guest's background sleep", func() bool {
		kids := childrenOf(guest)
		if len(kids) == 1 {
			orphan = kids[0]
		}
		return orphan != 0 && strings.HasPrefix(procFile(guest, "cmdline"), "sleep\x00301")
	})
	if err := syscall.Kill(guest, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 137 {
		t.Errorf("shim exit code = %d, want 137", code)
	}
	waitFor(t, "the namespace's other process to die with its init", func() bool { return !alive(orphan) })
}

// disable_network: the guest's network namespace holds loopback only, and
// loopback is up.
func TestDisableNetwork(t *testing.T) {
	requireNamespace(t, "net")
	t.Parallel()
	dir := openDir(t)
	spec := reportSpec(t, dir, "nonet")
	spec.DisableNetwork = true
	rep := runReport(t, dir, spec)
	if !slices.Equal(rep.Interfaces, []string{"lo"}) || rep.LoopbackTalk != "" {
		t.Errorf("interfaces %v, loopback %q; want [lo], up and working", rep.Interfaces, rep.LoopbackTalk)
	}
}

// Every setting at once, as a guest that is not root: applied together, in
// runc's order, without one undoing another.
func TestEverySettingTogether(t *testing.T) {
	requireNamespace(t, "pid")
	requireNamespace(t, "net")
	requireSeccomp(t)
	t.Parallel()
	dir := openDir(t)
	spec := reportSpec(t, dir, "all")
	spec.Security = messages.SecurityOptions{UID: 65534, GID: 65534, Groups: []uint32{100}, MaxOpenFiles: 64,
		MaxFileSize: 1 << 20, MaxProcesses: 50, Seccomp: true, NewPIDNS: true, SanitizeEnv: true, CloseFDs: true}
	spec.DisableNetwork = true
	rep := runReport(t, dir, spec)
	if rep.UID != 65534 || !slices.Equal(rep.Groups, []int{100}) || rep.NoFile[0] != 64 || rep.NProc[0] != 50 ||
		rep.Seccomp != "2" || rep.NoNewPrivs != "1" || rep.PID != 1 || !slices.Equal(rep.Interfaces, []string{"lo"}) || rep.Cwd != dir {
		t.Errorf("report %+v", rep)
	}
}

// sanitize_env: a guest whose spec sets no PATH gets the minimal one, and
// its command is looked up there; without it, the guest gets no PATH.
// Either way nothing of the shim's own environment reaches it.
func TestSanitizeEnv(t *testing.T) {
	for _, sanitize := range []bool{false, true} {
		t.Run("sanitize_env="+strconv.FormatBool(sanitize), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out := filepath.Join(dir, "env")
			spec := newSpec(dir, "env", "sh", "-c", "env > "+out)
			spec.GuestEntrypoint.Env = []string{"KEPT=1"}
			spec.Secrets = []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret("t0ken")}}
			spec.Security.SanitizeEnv = sanitize
			r := startShim(t, dir, spec, launch{})
			if !r.readReady() || r.wait() != 0 {
				t.Fatalf("guest failed; log:\n%s", r.log())
			}
			env := strings.Split(strings.TrimSpace(readFile(t, out)), "\n")
			if !hasEnv(env, "KEPT=1") || !hasEnv(env, "TOKEN=t0ken") || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, shimMarkerEnv) }) {
				t.Errorf("guest env %q: want KEPT and TOKEN, nothing of the shim's", env)
			}
			var paths []string
			for _, kv := range env {
				if strings.HasPrefix(kv, "PATH=") {
					paths = append(paths, kv)
				}
			}
			want := []string(nil)
			if sanitize {
				want = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
			}
			if !slices.Equal(paths, want) {
				t.Errorf("the guest's PATH entries are %q, want %q", paths, want)
			}
		})
	}
}

// execSettleWindow bounds how long a test waits for an exec'd guest's
// close-on-exec descriptors to be gone.
const execSettleWindow = 2 * time.Second

// close_fds: a descriptor that a careless caller left open at fd 3 (not a
// pipe, so not the supervisor's) does not reach the guest, on the plain
// start and through the init alike.
func TestCloseFDs(t *testing.T) {
	for _, confined := range []bool{false, true} {
		t.Run("confined="+strconv.FormatBool(confined), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			leak, err := os.Create(filepath.Join(dir, "leaked"))
			if err != nil {
				t.Fatal(err)
			}
			defer leak.Close()
			spec := newSpec(dir, "fds", "sleep", "300")
			spec.Security.CloseFDs = true
			if confined {
				spec.Security.MaxOpenFiles = 256
			}
			r := startShim(t, dir, spec, launch{noReady: true, fd3: leak})
			var guest int
			waitFor(t, "the guest to run sleep", func() bool {
				guest = 0
				if kids := childrenOf(r.pid()); len(kids) == 1 && strings.HasPrefix(procFile(kids[0], "cmdline"), "sleep\x00") {
					guest = kids[0]
				}
				return guest != 0
			})
			// The kernel shows the new program's cmdline a moment before it
			// closes the close-on-exec descriptors; a leaked one stays.
			var got []string
			closed := func() bool {
				entries, err := os.ReadDir("/proc/" + strconv.Itoa(guest) + "/fd")
				if err != nil {
					t.Fatal(err)
				}
				got = got[:0]
				for _, e := range entries {
					got = append(got, e.Name())
				}
				return slices.Equal(got, []string{"0", "1", "2"})
			}
			end := time.Now().Add(execSettleWindow)
			for !closed() && time.Now().Before(end) {
				time.Sleep(pollInterval)
			}
			if !slices.Equal(got, []string{"0", "1", "2"}) {
				t.Errorf("the guest's descriptors are %v, want [0 1 2]", got)
			}
		})
	}
}

// A setting that cannot be applied fails the start: no ready byte, exit
// 125, a reason that names the step, and the guest never runs.
func TestConfinementFailureIsAStartFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "guest-ran")
	spec := newSpec(dir, "refused", "sh", "-c", "touch "+marker)
	// More than the kernel's nr_open: refused even to root.
	spec.Security.MaxOpenFiles = 1 << 40
	r := startShim(t, dir, spec, launch{})
	if r.readReady() {
		t.Fatal("ready byte for a guest whose rlimit could not be set")
	}
	if code := r.wait(); code != 125 {
		t.Errorf("exit code %d, want 125; log:\n%s", code, r.log())
	}
	rec := r.exitRecord()
	if want := "setup failed: rlimit nofile=1099511627776: operation not permitted"; rec.Reason != want || rec.ExitCode != 125 {
		t.Errorf("exit record %+v, want 125 and %q", rec, want)
	}
	if fileExists(marker) {
		t.Error("the guest ran although its confinement failed")
	}
}

// The parent-death signal survives the change of identity (the kernel
// clears it on a credential change; the init sets it again): a confined
// guest dies with its shim.
func TestConfinedGuestDiesWithItsShim(t *testing.T) {
	testutil.RequireRoot(t, "the shim can only change a guest's identity or create namespaces as root")
	t.Parallel()
	dir := openDir(t)
	spec := newSpec(dir, "orphan", "sleep", "300")
	spec.Security.UID, spec.Security.GID = 65534, 65534
	r := startShim(t, dir, spec, launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	guest := r.guestPID()
	if err := syscall.Kill(r.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait()
	waitFor(t, "the guest to die with its shim", func() bool { return !alive(guest) })
}

// The working directory is entered as the guest: one its uid may not enter
// fails the start as an exec failure, like a missing one.
func TestWorkDirEnteredAsTheGuest(t *testing.T) {
	testutil.RequireRoot(t, "the shim can only change a guest's identity or create namespaces as root")
	t.Parallel()
	dir := openDir(t)
	private := filepath.Join(dir, "root-only")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	spec := newSpec(dir, "workdir", "true")
	spec.GuestEntrypoint.WorkDir = private
	spec.Security.UID, spec.Security.GID = 65534, 65534
	r := startShim(t, dir, spec, launch{})
	if r.readReady() {
		t.Fatal("ready byte for a guest that cannot enter its work_dir")
	}
	if code := r.wait(); code != 127 {
		t.Errorf("exit code %d, want 127", code)
	}
	if rec := r.exitRecord(); rec.Reason != "exec failed: chdir "+private+": permission denied" {
		t.Errorf("reason %q", rec.Reason)
	}
}
