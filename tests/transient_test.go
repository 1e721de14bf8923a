package tests

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// transientBoxes is how many boxes run while a supervisor with too few file
// descriptors adopts them, and transientNoFile that supervisor's
// RLIMIT_NOFILE: each adopted shim holds a pidfd, so the later
// verifications (and reads) fail with EMFILE.
const (
	transientBoxes  = 60
	transientNoFile = 40
)

// crashedStorm starts n detached boxes (every other one with
// restart=always) from a supervisor process that is then SIGKILLed after
// every start returned: the shims are orphans of a reaper, not children of
// the test process. It returns the box IDs.
func crashedStorm(t *testing.T, home, cgEnv string, n int) []string {
	t.Helper()
	tr := trackerFor(t, home)
	var ids []string
	for i := range n {
		// Named after the test: the leftover checks of tests that run in
		// parallel look for shims by box ID.
		ids = append(ids, fmt.Sprintf("%s-%02d", strings.ReplaceAll(t.Name()[strings.IndexByte(t.Name(), '/')+1:], "/", "-"), i))
		tr.useBox(ids[i])
	}
	r := startReaper(t, "storm", childHomeEnv+"="+home, childIDsEnv+"="+strings.Join(ids, ","), childCgroupEnv+"="+cgEnv)
	f := r.next(t)
	if len(f) != 2 || f[0] != "pid" {
		t.Fatalf("the child printed %q first, want its pid", f)
	}
	child, _ := strconv.Atoi(f[1])
	for {
		f := r.next(t)
		switch f[0] {
		case "ready":
			pid, _ := strconv.Atoi(f[2])
			tr.track(pid, "shim of "+f[1])
		case "failed":
			t.Fatalf("a Start failed: %v", f[1:])
		}
		if f[0] == "done" {
			break
		}
	}
	killAndWait(t, child)
	return ids
}

// identities reads every box's recorded identity from state.json.
func identities(t *testing.T, home string, ids []string) map[string]messages.Identity {
	t.Helper()
	hm, err := layout.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]messages.Identity{}
	for _, id := range ids {
		box, err := hm.Box(id)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := box.ReadState()
		if err != nil {
			t.Errorf("%s: reading state.json: %v", id, err)
			continue
		}
		out[id] = rec.Identity
	}
	return out
}

// childReply is a status and an error as the nofile child prints them.
type childReply struct {
	Status messages.BoxStatus
	Err    string
}

// TestTransientErrorsAtAdoptionAreNotVerdicts: 60 detached boxes run; a
// supervisor process whose RLIMIT_NOFILE is 40 opens the home, so that
// verifying (and reading) the later boxes fails with EMFILE. No box may be
// reported lost or exited: those it could not verify are unknown, their
// state.json identities stay as they were and every shim keeps running. Stop
// of an unknown box kills it through its cgroup, or, without box cgroups,
// is refused with ErrUnverified (Kill and a forced Remove too) and nothing
// is signalled. Once that process has gone, a normal supervisor adopts
// every box (issue: 31 of 60 boxes became "exited: lost: too many open
// files", their identities were zeroed, stop and rm -f reported success
// and left the shims running, and restart policies started second copies).
func TestTransientErrorsAtAdoptionAreNotVerdicts(t *testing.T) {
	checkGoroutines(t)
	for _, m := range []struct {
		name, env string
		mode      shimproc.CgroupMode
	}{{"cgroup", "auto", shimproc.CgroupAuto}, {"no-cgroup", "off", shimproc.CgroupOff}} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			withCgroup := m.mode != shimproc.CgroupOff
			if _, ok := shimproc.CgroupAvailable(); !ok {
				withCgroup = false
			}
			home := t.TempDir()
			cfg := withConfig(func(c *actors.Config) { c.Cgroup = m.mode })
			ids := crashedStorm(t, home, m.env, transientBoxes)
			recorded := identities(t, home, ids)
			shims := map[string]procID{}
			for _, id := range ids {
				p, err := identityOf(recorded[id].PID)
				if err != nil {
					t.Fatalf("%s: its shim %d is gone before the test began: %v", id, recorded[id].PID, err)
				}
				shims[id] = p
			}

			r := startReaper(t, "nofile", childHomeEnv+"="+home, childCgroupEnv+"="+m.env,
				fmt.Sprintf("%s=%d", childLimitEnv, transientNoFile))
			replies := map[string]string{}
			for {
				f := r.next(t)
				if f[0] == "bye" {
					break
				}
				replies[f[0]] = strings.Join(f[1:], " ")
			}
			var list []messages.BoxStatus
			if err := json.Unmarshal([]byte(replies["list"]), &list); err != nil {
				t.Fatalf("the child's List: %v: %q", err, replies["list"])
			}
			unknown := ""
			states := map[messages.BoxState]int{}
			for _, st := range list {
				states[st.State]++
				switch st.State {
				case messages.StateRunning:
				case messages.StateUnknown:
					if unknown == "" && st.PID != 0 {
						unknown = st.ID
					}
					if !strings.Contains(st.Reason, "too many open files") {
						t.Errorf("%s is unknown for %q, want the EMFILE that made it so", st.ID, st.Reason)
					}
				default:
					t.Errorf("%s was reported %s (%s) by a supervisor short of file descriptors; its shim runs", st.ID, st.State, st.Reason)
				}
			}
			t.Logf("with RLIMIT_NOFILE %d: %v", transientNoFile, states)
			if len(list) != transientBoxes {
				t.Errorf("the child listed %d boxes, want %d", len(list), transientBoxes)
			}
			if unknown == "" {
				t.Fatalf("no box was unknown with its record read: the file descriptor limit was never hit (%v)", states)
			}
			if raw, ok := replies["stop-unread"]; ok {
				// A box whose files could not be read: nothing is known
				// of it, and Stop refuses.
				var rep childReply
				if err := json.Unmarshal([]byte(raw), &rep); err != nil || !strings.Contains(rep.Err, "unverified") {
					t.Errorf("Stop of a box whose files could not be read: %s (%v); want ErrUnverified", raw, err)
				}
			}

			stopped := map[string]bool{}
			if withCgroup {
				var stop childReply
				if err := json.Unmarshal([]byte(replies["stop"]), &stop); err != nil {
					t.Fatalf("the child's Stop: %v: %q", err, replies["stop"])
				}
				// ErrPersist is allowed: the stop's record may have met the
				// exhausted descriptors before the child raised its limit.
				if stop.Err != "" && !strings.Contains(stop.Err, "not written") || stop.Status.State != messages.StateExited ||
					stop.Status.LastExit == nil || stop.Status.LastExit.Reason != "killed while unverified" {
					t.Errorf("Stop of the unknown box %s: %+v (%s); want it killed through its cgroup", stop.Status.ID, stop.Status, stop.Err)
				}
				stopped[stop.Status.ID] = true
			} else {
				for _, call := range []string{"stop", "kill", "rm"} {
					var rep childReply
					if err := json.Unmarshal([]byte(replies[call]), &rep); err != nil {
						t.Fatalf("the child's %s: %v: %q", call, err, replies[call])
					}
					if !strings.Contains(rep.Err, "unverified") {
						t.Errorf("%s of the unknown box %s without a cgroup: %+v (%q); want it refused with ErrUnverified", call, rep.Status.ID, rep.Status, rep.Err)
					}
				}
			}

			after := identities(t, home, ids)
			for id, shim := range shims {
				switch {
				case stopped[id]:
					if !shim.gone() && shim.alive() {
						t.Errorf("%s: stopped, but its shim %d runs", id, shim.PID)
					}
				case !shim.alive():
					t.Errorf("%s: its shim %d no longer runs", id, shim.PID)
				case after[id] != recorded[id]:
					t.Errorf("%s: state.json identity %+v, was %+v", id, after[id], recorded[id])
				}
			}

			next := startHarness(t, home, cfg)
			for _, id := range ids {
				got := next.status(id)
				switch {
				case stopped[id]:
					if got.State != messages.StateExited {
						t.Errorf("%s under the next supervisor: %s, want exited", id, got.State)
					}
				case got.State != messages.StateRunning || got.PID != recorded[id].PID:
					t.Errorf("%s under the next supervisor: %s pid %d (%s), want running pid %d", id, got.State, got.PID, got.Reason, recorded[id].PID)
				}
			}
		})
	}
}
