package health

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// execCheck is an exec check running script with /bin/sh.
func execCheck(script string, timeout time.Duration) *messages.HealthCheck {
	return &messages.HealthCheck{Exec: []string{"/bin/sh", "-c", script}, Timeout: timeout}
}

func TestExecProbeRunsInTheBox(t *testing.T) {
	t.Parallel()
	secret := "s3cret-token-value"
	spec := guestSpec("/bin/sleep", "300")
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, "GREETING=hello")
	spec.GuestEntrypoint.WorkDir = t.TempDir()
	spec.Secrets = []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(secret)}}
	b := startBox(t, spec)

	r := Probe(context.Background(), execCheck(`cat /proc/self/cgroup; echo "greeting=$GREETING token=$TOKEN"; pwd; test -z "$BOXSUP_READY_SOCKET"`, 10*time.Second), b.target)
	if r.Outcome != messages.HealthPass || r.ExitCode != 0 {
		t.Fatalf("probe: %+v", r)
	}
	if !strings.Contains(r.Output, "greeting=hello token=[REDACTED]") || strings.Contains(r.Output, secret) {
		t.Fatalf("the probe's environment is not the guest's, or its output shows the secret:\n%s", r.Output)
	}
	if !strings.Contains(r.Output, "\n"+spec.GuestEntrypoint.WorkDir+"\n") {
		t.Fatalf("the probe does not run in the guest's work_dir %s:\n%s", spec.GuestEntrypoint.WorkDir, r.Output)
	}
	if b.target.Cgroup == "" {
		t.Log("no cgroup v2 here: the cgroup part is not checked")
	} else if want := "0::" + cgroupRel(b.target.Cgroup) + "\n"; !strings.Contains(r.Output, want) {
		t.Fatalf("the probe is not in the generation's cgroup %q:\n%s", want, r.Output)
	}
}

func TestExecProbeOutcomes(t *testing.T) {
	t.Parallel()
	b := startBox(t, guestSpec("/bin/sleep", "300"))
	cases := []struct {
		check    *messages.HealthCheck
		want     messages.HealthOutcome
		exitCode int
		reason   string
	}{
		{execCheck("echo fine", 10*time.Second), messages.HealthPass, 0, ""},
		{execCheck("echo sick; exit 3", 10*time.Second), messages.HealthFail, 3, "exit status 3"},
		{execCheck("kill -9 $$", 10*time.Second), messages.HealthFail, -1, "signal: killed"},
		{&messages.HealthCheck{Exec: []string{"no-such-command-here"}}, messages.HealthFail, -1, "executable file not found"},
		{&messages.HealthCheck{Exec: []string{"/no/such/file"}}, messages.HealthFail, -1, "no such file"},
	}
	for _, c := range cases {
		r := Probe(context.Background(), c.check, b.target)
		if r.Outcome != c.want || r.ExitCode != c.exitCode || !strings.Contains(r.Reason, c.reason) {
			t.Errorf("%q: %+v, want %s, exit code %d, reason %q", c.check.Exec, r, c.want, c.exitCode, c.reason)
		}
	}
}

func TestExecProbeOutputIsBounded(t *testing.T) {
	t.Parallel()
	b := startBox(t, guestSpec("/bin/sleep", "300"))
	// 8 MiB: far more than a pipe holds, so the probe blocks unless its
	// output is read to the end.
	r := Probe(context.Background(), execCheck("head -c 8388608 /dev/zero | tr '\\0' x", 30*time.Second), b.target)
	if r.Outcome != messages.HealthPass {
		t.Fatalf("a probe writing 8 MiB: %+v", r.Reason)
	}
	if len(r.Output) != messages.MaxHealthOutput || strings.Trim(r.Output, "x") != "" {
		t.Fatalf("kept %d bytes of output, want the first %d", len(r.Output), messages.MaxHealthOutput)
	}
}

func TestExecProbeTimeoutKillsItsGroup(t *testing.T) {
	t.Parallel()
	b := startBox(t, guestSpec("/bin/sleep", "300"))
	start := time.Now()
	r := Probe(context.Background(), execCheck("sleep 1000 & echo bg=$!; exec sleep 1000", 300*time.Millisecond), b.target)
	if r.Outcome != messages.HealthFail || r.Reason != "timed out after 300ms" || r.ExitCode != -1 {
		t.Fatalf("a hung probe: %+v, want a failure: timed out after 300ms", r)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the hung probe took %v to end", took)
	}
	requireKilled(t, r.Output)
	if b.target.Cgroup != "" {
		if procs := cgroupProcs(t, b.target.Cgroup); len(procs) != 2 {
			t.Fatalf("the box's cgroup holds %v after the probe, want only the shim and its guest", procs)
		}
	}
}

func TestExecProbeLeavesNothingInItsGroup(t *testing.T) {
	t.Parallel()
	b := startBox(t, guestSpec("/bin/sleep", "300"))
	r := Probe(context.Background(), execCheck("sleep 1000 & echo bg=$!", 10*time.Second), b.target)
	if r.Outcome != messages.HealthPass {
		t.Fatalf("probe: %+v", r)
	}
	requireKilled(t, r.Output)
}

// requireKilled finds "bg=PID" in a probe's output and checks that the
// process was SIGKILLed: the test binary is a child subreaper (TestMain),
// so the orphan is reaped here.
func requireKilled(t *testing.T, output string) {
	t.Helper()
	_, after, ok := strings.Cut(output, "bg=")
	if !ok {
		t.Fatalf("no bg= in the probe's output %q", output)
	}
	pid, err := strconv.Atoi(strings.Fields(after)[0])
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	reaped := eventually(10*time.Second, func() bool {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		return err == nil && got == pid
	})
	if !reaped {
		t.Fatalf("the probe's background process %d was not killed (or not reparented here)", pid)
	}
	if !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Fatalf("the probe's background process %d ended with %v, want SIGKILL", pid, ws)
	}
}

func TestExecProbeAsTheGuestUser(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t, "joins namespaces and cgroups, changes identity")
	spec := guestSpec("/bin/sleep", "300")
	spec.Security.UID, spec.Security.GID, spec.Security.Groups = 65534, 65534, []uint32{65533}
	b := startBox(t, spec)
	r := Probe(context.Background(), execCheck("id -u; id -g; id -G; grep NoNewPrivs /proc/self/status", 10*time.Second), b.target)
	want := "65534\n65534\n65534 65533\nNoNewPrivs:\t1\n"
	if r.Outcome != messages.HealthPass || r.Output != want {
		t.Fatalf("probe as the guest: %s %q, output %q, want %q", r.Outcome, r.Reason, r.Output, want)
	}
}

func TestExecProbeInTheGuestNamespaces(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t, "joins namespaces and cgroups, changes identity")
	spec := guestSpec("/bin/sleep", "300")
	spec.Security.NewPIDNS = true
	spec.DisableNetwork = true
	b := startBox(t, spec)
	r := Probe(context.Background(), execCheck(`echo "pid=$$"; tr '\0' ' ' </proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'; cut -d: -f1 /proc/net/dev | tail -n +3`, 10*time.Second), b.target)
	if r.Outcome != messages.HealthPass {
		t.Fatalf("probe in the guest's namespaces: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Output), "\n")
	if len(lines) < 4 {
		t.Fatalf("output %q", r.Output)
	}
	pid, _ := strconv.Atoi(strings.TrimPrefix(lines[0], "pid="))
	if pid < 2 || pid > 100 {
		t.Errorf("the probe's pid is %d, want a small pid of the box's namespace", pid)
	}
	if strings.TrimSpace(lines[1]) != "/bin/sleep 300" {
		t.Errorf("pid 1 as the probe sees it runs %q, want the guest", lines[1])
	}
	if n, _ := strconv.Atoi(lines[2]); n > 10 {
		t.Errorf("the probe's /proc lists %d processes, want the box's few", n)
	}
	if ifaces := strings.Join(lines[3:], ","); strings.TrimSpace(ifaces) != "lo" {
		t.Errorf("the probe sees the interfaces %q, want lo alone", ifaces)
	}
}

func TestNetworkProbesInTheGuestNetworkNamespace(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t, "joins namespaces and cgroups, changes identity")
	addr := freeAddr(t) // free on the host's loopback: a probe from the host is refused
	spec := listenerSpec(t, addr)
	spec.DisableNetwork = true
	b := startBox(t, spec)
	_, port, _ := net.SplitHostPort(addr)

	tcp := &messages.HealthCheck{TCP: addr, Timeout: 5 * time.Second}
	var last messages.HealthResult
	if !eventually(10*time.Second, func() bool {
		last = Probe(context.Background(), tcp, b.target)
		return last.Outcome == messages.HealthPass
	}) {
		t.Fatalf("the tcp probe never reached the guest listening on %s in its namespace: %+v", addr, last)
	}
	if r := Probe(context.Background(), tcp, noBox); r.Outcome != messages.HealthFail {
		t.Fatalf("the same address from the host's namespace: %+v, want refused", r)
	}
	for _, u := range []string{"http://" + addr + "/", "http://localhost:" + port + "/"} {
		r := Probe(context.Background(), &messages.HealthCheck{HTTP: u, Timeout: 5 * time.Second}, b.target)
		if r.Outcome != messages.HealthPass || r.Output != "ok" {
			t.Fatalf("GET %s in the box's namespace: %+v", u, r)
		}
	}
}

func TestExecProbeJoinsTheV1Mirrors(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t, "joins namespaces and cgroups, changes identity")
	if len(v1MountPoints()) == 0 {
		t.Skip("no cgroup v1 hierarchies here: limits live in cgroup v2 alone")
	}
	if !shimproc.SupportedResources(shimproc.CgroupAuto, "boxsup-test").Pids {
		t.Skip("no pids controller for boxes here")
	}
	spec := guestSpec("/bin/sleep", "300")
	spec.Security.MaxProcesses = 200
	b := startBox(t, spec)
	r := Probe(context.Background(), execCheck("cat /proc/self/cgroup", 10*time.Second), b.target)
	if r.Outcome != messages.HealthPass {
		t.Fatalf("probe: %+v", r)
	}
	want := ":pids:" + cgroupRel(b.target.Cgroup) + "\n"
	if !strings.Contains(r.Output, want) {
		t.Fatalf("the probe is not in the generation's pids mirror %q:\n%s", want, r.Output)
	}
}

func TestExecProbeWithoutItsGuestIsNoVerdict(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t, "joins namespaces and cgroups, changes identity")
	spec := guestSpec("/bin/sleep", "300")
	spec.DisableNetwork = true
	b := startBox(t, spec)
	stale := b.target
	stale.Shim.StartTime++ // a recycled shim PID: not the process recorded
	r := Probe(context.Background(), execCheck("true", 5*time.Second), stale)
	if r.Outcome != messages.HealthError || !strings.Contains(r.Reason, "not the recorded process") {
		t.Fatalf("a probe whose shim is not the recorded one: %+v, want an error", r)
	}
	none := b.target
	none.Shim = messages.Identity{}
	if r := Probe(context.Background(), execCheck("true", 5*time.Second), none); r.Outcome != messages.HealthError {
		t.Fatalf("a probe without a shim identity: %+v, want an error", r)
	}
}

func TestThreadsOfProbesAreNotReused(t *testing.T) {
	// The network namespace of the thread that dialed into a box must
	// not leak into the supervisor's later dials, nor stay on a thread
	// (the main thread above all, which Go parks rather than ends). Not
	// parallel: it looks at every thread of the process.
	testutil.RequireRoot(t, "joins namespaces and cgroups, changes identity")
	addr := freeAddr(t)
	spec := listenerSpec(t, addr)
	spec.DisableNetwork = true
	b := startBox(t, spec)
	tcp := &messages.HealthCheck{TCP: addr, Timeout: 5 * time.Second}
	if !eventually(10*time.Second, func() bool { return Probe(context.Background(), tcp, b.target).Outcome == messages.HealthPass }) {
		t.Fatal("the guest never listened")
	}
	for i := range 50 {
		if r := Probe(context.Background(), tcp, noBox); r.Outcome != messages.HealthFail {
			t.Fatalf("host probe %d reached the box's namespace: %+v", i, r)
		}
		if r := Probe(context.Background(), tcp, b.target); r.Outcome != messages.HealthPass {
			t.Fatalf("box probe %d: %+v", i, r)
		}
	}
	host, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if leader, _ := os.Readlink("/proc/self/ns/net"); leader != host {
		t.Fatalf("the main thread is in %s, not the host's %s", leader, host)
	}
	// A disposable thread ends shortly after its goroutine.
	var stray string
	if !eventually(10*time.Second, func() bool {
		stray = ""
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if ns, err := os.Readlink(fmt.Sprintf("/proc/self/task/%s/ns/net", task.Name())); err == nil && ns != host {
				stray = task.Name() + " in " + ns
			}
		}
		return stray == ""
	}) {
		t.Fatalf("thread %s stays outside the host's %s", stray, host)
	}
}

func TestDisposableThreadsSpareTheMainThread(t *testing.T) {
	t.Parallel()
	// As if the goroutine had landed on the main thread: fn must run on
	// another thread, and the holder's thread must be given back.
	var holder, ran int
	done := make(chan struct{})
	go func() {
		defer close(done)
		runDisposable(func() { ran = unix.Gettid() }, func() bool {
			holder = unix.Gettid()
			return true
		})
	}()
	<-done
	if ran == 0 || ran == holder {
		t.Fatalf("fn ran on thread %d, the holder's is %d", ran, holder)
	}
}
