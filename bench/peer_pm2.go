package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pm2Driver runs pm2 (npm), the process manager of the Node.js world, with
// a PM2_HOME of its own.
type pm2Driver struct{}

func (pm2Driver) name() string { return "pm2" }

func (pm2Driver) effectiveTimeout(d time.Duration) time.Duration { return d }

func (pm2Driver) lookup(ctx context.Context, env *peerEnv) (string, error) {
	if err := lookPaths(installHint("npm install -g pm2"), "pm2", "node"); err != nil {
		return "", err
	}
	// Any pm2 command, --version included, starts a daemon in ~/.pm2: read
	// the version from the package instead.
	bin, _ := exec.LookPath("pm2")
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return "", nil
	}
	for dir := filepath.Dir(real); dir != "/"; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			continue
		}
		var pkg struct{ Name, Version string }
		if json.Unmarshal(b, &pkg) == nil && pkg.Name == "pm2" {
			return pkg.Version, nil
		}
	}
	return "", nil
}

func (pm2Driver) notes(env *peerEnv) []string {
	return []string{
		"a PM2_HOME of its own per instance; the daemon is started with `pm2 ping` before the timed part",
		"an ecosystem file: each app `script: /usr/bin/sleep`, `args: [\"3600\"]`, `interpreter: \"none\"` (pm2 then spawns the binary itself, fork mode), otherwise the defaults (`autorestart`, `min_uptime` 1 s, no restart delay, stop signal SIGINT, log files per app)",
		"start: `pm2 start ecosystem.config.js`; stop: `pm2 stop all`",
		"kill past the timeout: `kill_timeout: 100` (ms); the ignorer ignores SIGINT as well as SIGTERM, since pm2 stops with SIGINT",
		"metrics: `pm2 jlist` (CPU and memory per process, gathered by the daemon on request)",
		"recovery: `pm2 save` before the kill, `pm2 resurrect` after it, as pm2's documentation prescribes; shutdown: `pm2 kill`",
	}
}

// pm2App is one entry of the ecosystem file.
type pm2App struct {
	Name        string   `json:"name"`
	Script      string   `json:"script"`
	Args        []string `json:"args"`
	Interpreter string   `json:"interpreter"`
	ExecMode    string   `json:"exec_mode"`
	Autorestart bool     `json:"autorestart"`
	KillTimeout int64    `json:"kill_timeout,omitempty"`
}

func (pm2Driver) newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error) {
	p := &pm2Instance{env: env, dir: dir, setup: setup, home: filepath.Join(dir, "pm2")}
	apps := make([]pm2App, len(setup.services))
	for i, svc := range setup.services {
		apps[i] = pm2App{Name: svc.name, Script: svc.argv[0], Args: svc.argv[1:], Interpreter: "none", ExecMode: "fork", Autorestart: true}
		if setup.stopTimeout > 0 {
			apps[i].KillTimeout = setup.stopTimeout.Milliseconds()
		}
	}
	js, err := json.MarshalIndent(map[string]any{"apps": apps}, "", " ")
	if err != nil {
		return nil, err
	}
	p.eco = filepath.Join(dir, "ecosystem.config.js")
	if err := os.WriteFile(p.eco, append([]byte("module.exports = "), append(js, ";\n"...)...), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

type pm2Instance struct {
	env   *peerEnv
	dir   string
	home  string
	eco   string
	setup peerSetup
}

func (p *pm2Instance) pm2(ctx context.Context, args ...string) error {
	return p.env.procs.run(ctx, p.env.cmdTimeout, p.dir, "pm2.log", []string{"PM2_HOME=" + p.home}, "pm2", args...)
}

// daemonPID reads the God daemon's PID from PM2_HOME/pm2.pid; 0 if it is
// not running.
func (p *pm2Instance) daemonPID() int {
	b, err := os.ReadFile(filepath.Join(p.home, "pm2.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !live(pid) {
		return 0
	}
	return pid
}

func (p *pm2Instance) launch(ctx context.Context) error {
	if err := p.pm2(ctx, "ping"); err != nil {
		return err
	}
	if p.daemonPID() == 0 {
		return fmt.Errorf("pm2 ping: no daemon running in %s", p.home)
	}
	return nil
}

func (p *pm2Instance) startAll(ctx context.Context) error { return p.pm2(ctx, "start", p.eco) }

func (p *pm2Instance) stopAll(ctx context.Context) error { return p.pm2(ctx, "stop", "all") }

func (p *pm2Instance) startOne(ctx context.Context, name string) error {
	return p.pm2(ctx, "start", name)
}

func (p *pm2Instance) stopOne(ctx context.Context, name string) error {
	return p.pm2(ctx, "stop", name)
}

func (p *pm2Instance) roots() []int {
	if pid := p.daemonPID(); pid != 0 {
		return []int{pid}
	}
	return nil
}

func (*pm2Instance) signalled(pid int) int { return pid }

func (p *pm2Instance) metrics(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.env.cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pm2", "jlist")
	cmd.Env = append(os.Environ(), "PM2_HOME="+p.home)
	cmd.Dir = p.dir
	var out strings.Builder
	cmd.Stdout = &out
	if err := p.env.procs.start(cmd); err != nil {
		return 0, err
	}
	if err := p.env.procs.wait(cmd); err != nil {
		return 0, fmt.Errorf("pm2 jlist: %w", err)
	}
	var list []struct {
		Name  string `json:"name"`
		Monit *struct {
			Memory float64 `json:"memory"`
			CPU    float64 `json:"cpu"`
		} `json:"monit"`
	}
	// pm2 may print notices before the JSON array.
	js := out.String()
	if i := strings.Index(js, "["); i > 0 {
		js = js[i:]
	}
	if err := json.Unmarshal([]byte(js), &list); err != nil {
		return 0, fmt.Errorf("pm2 jlist: %w", err)
	}
	n := 0
	for _, e := range list {
		if e.Monit != nil && e.Monit.Memory > 0 {
			n++
		}
	}
	return n, nil
}

func (p *pm2Instance) beforeKill(ctx context.Context) error { return p.pm2(ctx, "save") }

func (p *pm2Instance) recover(ctx context.Context) error { return p.pm2(ctx, "resurrect") }

func (p *pm2Instance) shutdown(ctx context.Context) error {
	pid := p.daemonPID()
	if pid == 0 {
		return nil
	}
	if err := p.pm2(ctx, "kill"); err != nil {
		return err
	}
	if !pollUntil(30*time.Second, 10*time.Millisecond, func() bool { p.env.procs.reapOrphans(); return !live(pid) }) {
		return fmt.Errorf("the pm2 daemon (pid %d) still runs after pm2 kill", pid)
	}
	return nil
}

// httpGet fetches url and returns the body.
func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}
