package bench

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/boxsup/boxsup/messages"
)

// boxSpec is the guest a row runs; the supervisor and the floor get the same
// InstanceSpec from it.
type boxSpec struct {
	executable string
	args       []string
	detach     bool
}

// sleeperSpec is a cooperative guest: sleep dies on SIGTERM.
func sleeperSpec() (boxSpec, error) {
	p, err := exec.LookPath("sleep")
	if err != nil {
		return boxSpec{}, fmt.Errorf("the benchmark guest needs sleep(1): %w", err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return boxSpec{}, err
	}
	return boxSpec{executable: abs, args: []string{"3600"}}, nil
}

// ignorerSpec is a guest that ignores SIGTERM: the shell sets SIGTERM to
// SIG_IGN, which survives the exec into sleep, so the guest is one process
// that only SIGKILL ends.
func ignorerSpec() (boxSpec, error) {
	sleeper, err := sleeperSpec()
	if err != nil {
		return boxSpec{}, err
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return boxSpec{}, fmt.Errorf("the SIGTERM-ignoring guest needs sh(1): %w", err)
	}
	return boxSpec{executable: sh, args: []string{"-c", "trap '' TERM; exec " + sleeper.executable + " 3600"}}, nil
}

// instance returns the InstanceSpec the supervisor gets; it fills the
// console and exit paths itself.
func (s boxSpec) instance() messages.InstanceSpec {
	return messages.InstanceSpec{
		Engine:          messages.EngineProcess,
		GuestEntrypoint: messages.Entrypoint{Executable: s.executable, Args: s.args},
		Detach:          s.detach,
	}
}

// rawJSON returns the spec the floor hands to the shim for box id in dir,
// with the console and exit paths shimproc would fill in.
func (s boxSpec) rawJSON(id, dir string) ([]byte, error) {
	spec := s.instance()
	spec.Version = messages.SpecVersion
	spec.BoxID = id
	spec.ConsoleOutput = filepath.Join(dir, "console.log")
	spec.ExitFile = filepath.Join(dir, "exit.json")
	return json.Marshal(&spec)
}

// startRequest is the StartBox for box id.
func (s boxSpec) startRequest(id string, restart messages.RestartPolicy) messages.StartBox {
	return messages.StartBox{ID: id, Spec: s.instance(), Restart: restart}
}
