package control

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/boxsup/boxsup"

// depsOf lists the packages pkg imports, directly or not.
func depsOf(t *testing.T, pkg string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
	if err != nil {
		t.Skipf("go list -deps %s: %v (no go command to inspect the build with)", pkg, err)
	}
	return strings.Fields(string(out))
}

func prometheusPackages(pkgs []string) []string {
	var out []string
	for _, p := range pkgs {
		if strings.Contains(p, "prometheus/client_golang") {
			out = append(out, p)
		}
	}
	return out
}

// TestControlAddsNoPrometheus: the exporter lives in promexport, so package
// control links no client_golang package of its own, beyond what its
// dependency on actors brings (see TestControlLinksNoPrometheus).
func TestControlAddsNoPrometheus(t *testing.T) {
	t.Parallel()
	control := depsOf(t, modulePath+"/control")
	actors := depsOf(t, modulePath+"/actors")
	var own []string
	for _, p := range control {
		if !slices.Contains(actors, p) {
			own = append(own, p)
		}
	}
	if bad := prometheusPackages(own); len(bad) > 0 {
		t.Errorf("package control imports Prometheus packages of its own: %v (the exporter belongs in promexport)", bad)
	}
}

// TestControlLinksNoPrometheus is the goal: an embedder that imports the
// control client links no client_golang at all. It cannot hold while
// package control holds Local, which imports actors, whose protoactor-go
// actor package imports the OpenTelemetry Prometheus exporter; it skips
// until the client no longer comes with actors.
func TestControlLinksNoPrometheus(t *testing.T) {
	t.Parallel()
	deps := depsOf(t, modulePath+"/control")
	bad := prometheusPackages(deps)
	if len(bad) > 0 && slices.Contains(deps, modulePath+"/actors") {
		t.Skipf("package control imports actors (for Local), and protoactor-go brings client_golang with it: %v", bad)
	}
	if len(bad) > 0 {
		t.Errorf("package control links Prometheus packages: %v", bad)
	}
}
