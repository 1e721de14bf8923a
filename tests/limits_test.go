package tests

import (
	"errors"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// TestLimitsRefusedWhereTheyCannotBeEnforced: a supervisor whose boxes get
// no cgroup refuses a spec with resource limits before anything is
// created (ErrUnsupported, also ErrBadSpec, naming the reason), and goes
// on serving.
func TestLimitsRefusedWhereTheyCannotBeEnforced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withConfig(func(c *actors.Config) { c.Cgroup = shimproc.CgroupOff }))
	for name, edit := range map[string]func(*messages.InstanceSpec){
		"memory_mib":    func(s *messages.InstanceSpec) { s.MemoryMiB = 64 },
		"cpu_millis":    func(s *messages.InstanceSpec) { s.CPUMillis = 500 },
		"max_processes": func(s *messages.InstanceSpec) { s.Security.MaxProcesses = 50 },
	} {
		spec := h.sleepSpec()
		edit(&spec)
		_, err := h.sup.Start(h.ctx(), messages.StartBox{ID: "capped", Spec: spec})
		requireCode(t, "Start with "+name+" and no box cgroup", err, messages.ErrUnsupported)
		if !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%s: %v is not also ErrBadSpec", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cgroup mode off") {
			t.Errorf("%s: %q does not say why", name, err)
		}
		if h.boxDirExists("capped") {
			t.Fatalf("%s: a box directory was left behind", name)
		}
	}
	requireNoBoxDirs(t, h)
	stillServes(t, h, "after-limits")
}
