package shim_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/shimproc/shim"
)

// TestShimLogFollowsTheSupervisorsLevel: BOXSUP_LOG (the supervisor's level,
// passed by shimproc) decides which of the shim's lifecycle lines reach
// shim.log; unset means info; a value that is no level is a usage error
// (exit 125) and the guest never runs.
func TestShimLogFollowsTheSupervisorsLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level      string
		info, dbug bool
	}{
		{"", true, false},
		{"warn", false, false},
		{"info", true, false},
		{"debug", true, true},
		{"TRACE", true, true},
	} {
		dir := t.TempDir()
		r := startShim(t, dir, newSpec(dir, "lvl", "true"), launch{env: []string{shim.LogLevelEnv + "=" + tc.level}})
		if code := r.wait(); code != 0 {
			t.Fatalf("%s=%q: exit %d\n%s", shim.LogLevelEnv, tc.level, code, r.log())
		}
		log := r.log()
		for what, want := range map[string]bool{
			" info: box lvl: shim starting (": tc.info,
			" info: box lvl: guest started":   tc.info,
			" info: guest pid ":               tc.info,
			" debug: box lvl: spec read (":    tc.dbug,
			" debug: exiting with code 0":     tc.dbug,
		} {
			if got := strings.Contains(log, what); got != want {
				t.Errorf("%s=%q: %q in shim.log = %v, want %v\n%s", shim.LogLevelEnv, tc.level, what, got, want, log)
			}
		}
	}

	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	r := startShim(t, dir, newSpec(dir, "lvl", "touch", marker), launch{env: []string{shim.LogLevelEnv + "=loud"}})
	if code := r.wait(); code != 125 {
		t.Fatalf("%s=loud: exit %d, want 125\n%s", shim.LogLevelEnv, code, r.log())
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, shim.LogLevelEnv) || !strings.Contains(r.log(), " error: usage: ") {
		t.Errorf("%s=loud: exit record %+v, log:\n%s; want a usage error naming the variable", shim.LogLevelEnv, rec, r.log())
	}
	if fileExists(marker) {
		t.Error("the guest ran with an unusable log level")
	}
}

// TestShimLinksNoHeavyDependency: the shim binary, started for every box
// start, links neither logrus, protoactor nor gopsutil (its log levels are
// its own, a few lines); nor package net or os/user, whose cgo resolvers
// would make it a dynamically linked executable that loads libc at every
// start (about 115 KiB more private memory per box); nor os/exec, which
// forks a throw-away child once per process to check pidfd support.
func TestShimLinksNoHeavyDependency(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/boxsup/boxsup/cmd/boxsup-shim").Output()
	if err != nil {
		t.Skipf("go list -deps: %v (no go command to inspect the build with)", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/sirupsen/logrus", "github.com/asynkron/protoactor-go", "github.com/shirou/gopsutil"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("cmd/boxsup-shim links %s", pkg)
			}
		}
		switch pkg {
		case "net", "os/user", "runtime/cgo", "os/exec":
			t.Errorf("cmd/boxsup-shim links %s", pkg)
		}
	}
}
