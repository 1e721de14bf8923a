package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// supervisordDriver runs Debian's supervisor (the Python supervisord),
// controlled with supervisorctl over a Unix socket.
type supervisordDriver struct{}

func (supervisordDriver) name() string { return "supervisord" }

func (supervisordDriver) effectiveTimeout(d time.Duration) time.Duration {
	return time.Duration(secondsCeil(d)) * time.Second
}

func (supervisordDriver) lookup(ctx context.Context, env *peerEnv) (string, error) {
	if err := lookPaths(installHint("apt-get install supervisor"), "supervisord", "supervisorctl"); err != nil {
		return "", err
	}
	return debianVersion("supervisor"), nil
}

func (supervisordDriver) notes(env *peerEnv) []string {
	return []string{
		"`supervisord -n -c FILE` (in the foreground, under the benchmark) with a Unix-socket RPC server for supervisorctl; `minfds` and `minprocs` raised for the number of programs, as its documentation asks",
		"each program: `command=/usr/bin/sleep 3600`, `autorestart=true`, otherwise the defaults (`autostart=true`, `startsecs=1`, stdout and stderr to AUTO log files)",
		"start: the programs are added to the configuration of the running supervisord (untimed), then `supervisorctl update` (timed) adds them and, autostart being on, starts them",
		"stop: `supervisorctl stop all`",
		"kill past the timeout: `stopwaitsecs=1` (whole seconds)",
		"crash→restart: its main loop reaps a dead child after the turn that would restart it, so the restart waits for the next turn of its 1 s poll (a signal does not cut the poll short); this is not configurable",
		"recovery: supervisord is started again on the same configuration",
		"shutdown: `supervisorctl shutdown`",
	}
}

func (supervisordDriver) newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error) {
	s := &supervisordInstance{env: env, dir: dir, setup: setup}
	s.conf = filepath.Join(dir, "supervisord.conf")
	s.sock = filepath.Join(dir, "supervisor.sock")
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "childlogs"), 0o755); err != nil {
		return nil, err
	}
	n := len(setup.services)
	conf := fmt.Sprintf(`[unix_http_server]
file=%[1]s/supervisor.sock
chmod=0700

[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s/childlogs
nodaemon=true
minfds=%[2]d
minprocs=%[3]d

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s/supervisor.sock

[include]
files = %[1]s/conf.d/*.conf
`, dir, 1024+8*n, 256+2*n)
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// programSections renders [program:NAME] sections for the services.
func programSections(setup peerSetup, extra string) string {
	var b strings.Builder
	for _, svc := range setup.services {
		fmt.Fprintf(&b, "[program:%s]\ncommand=%s\nautorestart=true\n", svc.name, iniCommand(svc.argv))
		if setup.stopTimeout > 0 {
			fmt.Fprintf(&b, "stopwaitsecs=%d\n", secondsCeil(setup.stopTimeout))
		}
		b.WriteString(extra)
		b.WriteString("\n")
	}
	return b.String()
}

// iniCommand renders argv for supervisord's `command=`, which is split with
// shell-like quoting.
func iniCommand(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsAny(a, " \t'\"\\;%") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`).Replace(a) + `"`
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

type supervisordInstance struct {
	env   *peerEnv
	dir   string
	conf  string
	sock  string
	setup peerSetup
	proc  *daemon
}

func (s *supervisordInstance) ctl(ctx context.Context, args ...string) error {
	return s.env.procs.run(ctx, s.env.cmdTimeout, s.dir, "supervisorctl.log", nil, "supervisorctl", append([]string{"-c", s.conf}, args...)...)
}

func (s *supervisordInstance) startDaemon() error {
	_ = os.Remove(s.sock)
	d, err := s.env.procs.startDaemon(s.dir, "supervisord.out", nil, "supervisord", "-n", "-c", s.conf)
	if err != nil {
		return err
	}
	s.proc = d
	if !pollUntil(30*time.Second, 5*time.Millisecond, func() bool { return unixSocketAnswers(s.sock) || d.exited() }) || d.exited() {
		return fmt.Errorf("supervisord did not come up%s", logTail(filepath.Join(s.dir, "supervisord.out"), 0))
	}
	return nil
}

// unixSocketAnswers reports whether something accepts connections on the
// Unix socket at path.
func unixSocketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *supervisordInstance) launch(ctx context.Context) error {
	if err := s.startDaemon(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "conf.d", "programs.conf"), []byte(programSections(s.setup, "")), 0o644)
}

func (s *supervisordInstance) startAll(ctx context.Context) error { return s.ctl(ctx, "update") }

func (s *supervisordInstance) stopAll(ctx context.Context) error { return s.ctl(ctx, "stop", "all") }

func (s *supervisordInstance) startOne(ctx context.Context, name string) error {
	return s.ctl(ctx, "start", name)
}

func (s *supervisordInstance) stopOne(ctx context.Context, name string) error {
	return s.ctl(ctx, "stop", name)
}

func (s *supervisordInstance) roots() []int {
	if s.proc == nil || s.proc.exited() {
		return nil
	}
	return []int{s.proc.pid()}
}

func (*supervisordInstance) signalled(pid int) int { return pid }

func (s *supervisordInstance) metrics(context.Context) (int, error) { return 0, errNoMetrics }

func (s *supervisordInstance) beforeKill(context.Context) error { return nil }

func (s *supervisordInstance) recover(ctx context.Context) error {
	if s.proc != nil {
		_ = s.proc.waitExit(5 * time.Second)
	}
	return s.startDaemon()
}

func (s *supervisordInstance) shutdown(ctx context.Context) error {
	if s.proc == nil || s.proc.exited() {
		return nil
	}
	if err := s.ctl(ctx, "shutdown"); err != nil {
		return err
	}
	return s.proc.waitExit(60 * time.Second)
}

// ochinchinaDriver runs ochinchina/supervisord, a Go re-implementation of
// supervisord, built from the Go module proxy for the run.
type ochinchinaDriver struct{}

// ochinchinaModule is the version the benchmark builds.
const ochinchinaModule = "github.com/ochinchina/supervisord@v0.7.3"

func (ochinchinaDriver) name() string { return "ochinchina/supervisord" }

func (ochinchinaDriver) effectiveTimeout(d time.Duration) time.Duration {
	return time.Duration(secondsCeil(d)) * time.Second
}

func (ochinchinaDriver) lookup(ctx context.Context, env *peerEnv) (string, error) {
	if env.ochinchina == "" {
		return "", env.ochinchinaErr
	}
	return strings.TrimPrefix(ochinchinaModule, "github.com/ochinchina/supervisord@"), nil
}

func (ochinchinaDriver) notes(env *peerEnv) []string {
	return []string{
		"built for the run from " + ochinchinaModule + " (in a temporary module: `go install` refuses it because the proxy lists no versions of it) and removed afterwards",
		"`supervisord -c FILE` in the foreground; `supervisord ctl` talks to its HTTP server on a free loopback port (its ctl does not use Unix sockets)",
		"each program: `command=/usr/bin/sleep 3600`, `autorestart=true`, `stopsignal=TERM` (its default is empty, which makes every stop an immediate SIGKILL), otherwise the defaults",
		"start: the programs are added to the configuration (untimed), then `supervisord ctl reload` (timed), which starts the new autostart programs",
		"stop: `supervisord ctl stop all`; kill past the timeout: `stopwaitsecs=1` (whole seconds; it checks for the exit every 10 ms)",
		"crash→restart: a program that ran less than 2 s (by whole seconds of the clock) is restarted only after 5 s; the crashes are spaced further apart",
		"the programs' output goes to /dev/null (its default; the Python supervisord writes AUTO log files)",
		"metrics: its Prometheus endpoint `/metrics` (process states and uptimes, no CPU or memory)",
		"recovery: started again on the same configuration; its programs die with it (it starts them with Pdeathsig), so the new instance starts them afresh; shutdown: `supervisord ctl shutdown`",
	}
}

func (ochinchinaDriver) newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	o := &ochinchinaInstance{supervisordInstance: supervisordInstance{env: env, dir: dir, setup: setup}, port: port}
	o.conf = filepath.Join(dir, "supervisord.conf")
	n := len(setup.services)
	o.header = fmt.Sprintf(`[inet_http_server]
port=127.0.0.1:%[2]d

[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
minfds=%[3]d
minprocs=%[4]d

[supervisorctl]
serverurl=http://127.0.0.1:%[2]d

`, dir, port, 1024+8*n, 256+2*n)
	if err := os.WriteFile(o.conf, []byte(o.header), 0o644); err != nil {
		return nil, err
	}
	return o, nil
}

// freeLoopbackPort asks the kernel for a free TCP port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type ochinchinaInstance struct {
	supervisordInstance
	port   int
	header string
}

func (o *ochinchinaInstance) url() string { return "http://127.0.0.1:" + strconv.Itoa(o.port) }

func (o *ochinchinaInstance) ctl(ctx context.Context, args ...string) error {
	return o.env.procs.run(ctx, o.env.cmdTimeout, o.dir, "ctl.log", nil, o.env.ochinchina, append([]string{"ctl", "-c", o.conf, "-s", o.url()}, args...)...)
}

func (o *ochinchinaInstance) startDaemon() error {
	d, err := o.env.procs.startDaemon(o.dir, "supervisord.out", nil, o.env.ochinchina, "-c", o.conf)
	if err != nil {
		return err
	}
	o.proc = d
	addr := "127.0.0.1:" + strconv.Itoa(o.port)
	if !pollUntil(30*time.Second, 5*time.Millisecond, func() bool { return tcpAnswers(addr) || d.exited() }) || d.exited() {
		return fmt.Errorf("ochinchina/supervisord did not come up%s", logTail(filepath.Join(o.dir, "supervisord.out"), 0))
	}
	return nil
}

// tcpAnswers reports whether something accepts connections at addr.
func tcpAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (o *ochinchinaInstance) launch(ctx context.Context) error {
	if err := o.startDaemon(); err != nil {
		return err
	}
	// Its default stopsignal is empty, which makes a stop a SIGKILL at once;
	// TERM is the Python supervisord's default and what the others send.
	return os.WriteFile(o.conf, []byte(o.header+programSections(o.setup, "stopsignal=TERM\n")), 0o644)
}

func (o *ochinchinaInstance) startAll(ctx context.Context) error { return o.ctl(ctx, "reload") }

func (o *ochinchinaInstance) stopAll(ctx context.Context) error { return o.ctl(ctx, "stop", "all") }

func (o *ochinchinaInstance) startOne(ctx context.Context, name string) error {
	return o.ctl(ctx, "start", name)
}

func (o *ochinchinaInstance) stopOne(ctx context.Context, name string) error {
	return o.ctl(ctx, "stop", name)
}

func (o *ochinchinaInstance) metrics(ctx context.Context) (int, error) {
	body, err := httpGet(ctx, o.url()+"/metrics")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, svc := range o.setup.services {
		if strings.Contains(body, `"`+svc.name+`"`) {
			n++
		}
	}
	return n, nil
}

func (o *ochinchinaInstance) recover(ctx context.Context) error {
	if o.proc != nil {
		_ = o.proc.waitExit(5 * time.Second)
	}
	return o.startDaemon()
}

func (o *ochinchinaInstance) shutdown(ctx context.Context) error {
	if o.proc == nil || o.proc.exited() {
		return nil
	}
	if err := o.ctl(ctx, "shutdown"); err != nil {
		return err
	}
	return o.proc.waitExit(60 * time.Second)
}
