package shimproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// FindOptions says where FindShim looks for a box's shim.
type FindOptions struct {
	// Cgroup is a cgroup of the box (a generation's, or the box's own,
	// holding every generation's): its members and its descendants' are
	// the candidates. Empty means the box has no cgroup.
	Cgroup string
	// Token is the spawn token recorded before the spawn (without a
	// cgroup, the candidate must carry it in its environment).
	Token string
	// Check is what makes a candidate a shim of the box. FindShim always
	// requires the working directory to be the box's.
	Check ShimCheck
	// Logger receives the package's logs; nil discards.
	Logger logrus.FieldLogger
}

// StraysError reports processes in a box's cgroup none of which is a shim
// of the box (e.g. a guest that outlived its shim). They are the box's
// (nothing else runs in its cgroup) and must be killed before the box runs
// again: see KillCgroup.
type StraysError struct {
	Cgroup string
	PIDs   []int
}

func (e *StraysError) Error() string {
	return fmt.Sprintf("cgroup %s holds %d process(es) but no shim of the box: %v", e.Cgroup, len(e.PIDs), e.PIDs)
}

// FindShim looks for a running shim of box whose identity was never
// recorded (a supervisor died between the spawn and writing state.json, or
// state.json is damaged) and adopts it: in opts.Cgroup when set (the oldest
// member that passes the check: the shim was cloned into it before anything
// else), else among all processes, by command line, working directory and,
// when given, spawn token. It returns an error wrapping ErrGone when there is
// no such process, a *StraysError when the cgroup holds only other
// processes, and any other error (EMFILE, ...) when it could not tell.
func FindShim(box layout.Box, opts FindOptions) (*Handle, error) {
	chk := opts.Check
	chk.Cwd = true
	var pids []int
	var err error
	if opts.Cgroup != "" {
		pids, err = cgroupTreeProcs(opts.Cgroup)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("box %s: cgroup %s does not exist: %w", box.ID, opts.Cgroup, ErrGone)
		}
	} else {
		pids, err = shimCandidates(box.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("box %s: looking for its shim: %w", box.ID, err)
	}
	type candidate struct {
		id messages.Identity
	}
	var found []candidate
	var unsure error
	for _, pid := range pids {
		id, err := ReadIdentity(pid)
		if err != nil {
			if !errors.Is(err, ErrGone) {
				unsure = err
			}
			continue
		}
		found = append(found, candidate{id})
	}
	slices.SortFunc(found, func(a, b candidate) int {
		switch {
		case a.id.StartTime < b.id.StartTime:
			return -1
		case a.id.StartTime > b.id.StartTime:
			return 1
		}
		return a.id.PID - b.id.PID
	})
	adoptOpts := AdoptOptions{Cgroup: "", Shim: &chk, Logger: opts.Logger}
	var strays []int
	for _, c := range found {
		if opts.Cgroup != "" {
			if rel, err := procCgroupV2(c.id.PID); err == nil {
				if root, ok := CgroupAvailable(); ok {
					adoptOpts.Cgroup = root + rel
					adoptOpts.CgroupParent = opts.Cgroup
				}
			}
		}
		if opts.Token != "" {
			ok, err := environHas(c.id.PID, SpawnTokenEnv+"="+opts.Token)
			switch {
			case err != nil && !errors.Is(err, ErrGone):
				unsure = err
				continue
			case !ok && opts.Cgroup == "":
				continue // somebody else's shim of a box with this ID
			}
		}
		h, err := Adopt(box, c.id, adoptOpts)
		switch {
		case err == nil:
			return h, nil
		case errors.Is(err, messages.ErrIdentityMismatch):
			strays = append(strays, c.id.PID)
		case !errors.Is(err, ErrGone):
			unsure = err
		}
	}
	switch {
	case unsure != nil:
		return nil, fmt.Errorf("box %s: looking for its shim: %w", box.ID, unsure)
	case len(strays) > 0 && opts.Cgroup != "":
		return nil, &StraysError{Cgroup: opts.Cgroup, PIDs: strays}
	}
	return nil, fmt.Errorf("box %s: no shim of the box is running: %w", box.ID, ErrGone)
}

// cgroupTreeProcs lists the processes in a cgroup and in every cgroup
// below it.
func cgroupTreeProcs(dir string) ([]int, error) {
	var out []int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // a child cgroup removed while we walk
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := FindCgroupProcs(path)
		if err != nil && !(path != dir && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
		out = append(out, pids...)
		return nil
	})
	return out, err
}

// shimCandidates lists the processes whose command line ends in
// "--box-id ID", by reading every /proc/PID/cmdline (a box without a cgroup
// leaves no better place to look). Processes that vanish meanwhile are
// skipped; others that cannot be read make the answer unsure.
func shimCandidates(id string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	var unsure error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		argv, err := readCmdline(pid)
		switch {
		case errors.Is(err, ErrGone):
			continue
		case err != nil:
			if !errors.Is(err, fs.ErrPermission) { // another user's process
				unsure = err
			}
			continue
		}
		if len(argv) == 3 && argv[1] == "--box-id" && argv[2] == id {
			out = append(out, pid)
		}
	}
	if len(out) == 0 && unsure != nil {
		return nil, unsure
	}
	return out, nil
}

// CgroupPopulated reports whether a cgroup, or any cgroup below it, holds a
// process ("populated 1" in cgroup.events). A missing cgroup is empty.
func CgroupPopulated(dir string) (bool, error) { return cgroupPopulated(dir) }

// KillCgroup SIGKILLs every process in the cgroup dir and below it (through
// cgroup.kill, else pid by pid through pidfds). dir must lie under a
// writable cgroup v2 root; callers pass only cgroups of their own boxes,
// never one read from a file alone. A missing cgroup has nothing to kill.
func KillCgroup(dir string) error {
	root, ok := CgroupAvailable()
	if !ok || filepath.Clean(dir) != dir || !strings.HasPrefix(dir, root+"/") {
		return messages.Errorf(messages.ErrCgroup, "refusing to kill %q: not a cgroup under %s", dir, root)
	}
	return killCgroup(dir)
}

// RemoveBoxCgroup removes a box's cgroup (BoxCgroupDir) with its empty
// generation cgroups, and their cgroup v1 mirrors (limits on a hybrid
// host). A populated one is left, with messages.ErrCgroup; a missing one is
// not an error.
func RemoveBoxCgroup(dir string) error {
	if dir == "" {
		return nil
	}
	return errors.Join(removeCgroupTree(dir), removeV1Box(dir))
}

// RemoveGenCgroup removes a generation's cgroup when it is empty (after its
// shim exited), with its cgroup v1 mirrors, and the box's cgroup above it
// when no generation's is left. A busy or missing cgroup is left as it is.
func RemoveGenCgroup(dir string) {
	if dir != "" && removeCgroupTree(dir) == nil && strings.HasPrefix(filepath.Base(dir), "gen-") {
		removeIfEmpty(filepath.Dir(dir))
	}
	_ = removeV1Gen(dir, cgroupRemoveWait)
}
