package bench

import (
	"context"
	"fmt"
	"github.com/boxsup/boxsup/actors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// restartPolicy restarts at once, without limit: row 8 measures the
// supervisor's reaction, not a backoff.
var restartPolicy = messages.RestartPolicy{Mode: messages.RestartAlways, InitialBackoff: -1, MaxRestarts: -1}

// restartRows measures row 8: SIGKILL to a box's guest until the BoxReady
// event of the restarted guest reaches a Subscribe callback: with the
// reference shim, a restart in place (docs/SHIM-PROTOCOL.md §16); with a
// shim that cannot, the next generation. The target is relative to row 1's floor (start→ready of a raw
// shim), measured here when row 1 did not run.
func (r *runner) restartRows(ctx context.Context) ([]Row, error) {
	spec, err := sleeperSpec()
	if err != nil {
		return nil, err
	}
	floor := r.startFloor
	if floor == nil {
		s, err := r.measureStartFloor(spec, 50)
		if err != nil {
			return nil, err
		}
		floor = &s
	}
	sup, err := r.newSupervisor(r.newHome("restart"))
	if err != nil {
		return nil, err
	}
	defer stopAll(sup)
	const id = "crashy"
	readies := make(chan messages.BoxReady, 64)
	cancel := sup.Subscribe(actors.EventFilter{}, func(ev messages.Event) {
		if rd, ok := ev.(messages.BoxReady); ok && rd.BoxID == id {
			readies <- rd
		}
	})
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	if _, err := sup.Start(ctx, spec.startRequest(id, restartPolicy)); err != nil {
		return nil, err
	}
	n := r.cfg.Iterations / 2
	r.progress("row 8: %d crashes (SIGKILL to the guest) with restart policy always, no backoff", n)
	var samples, crashFloor []time.Duration
	rawDir := filepath.Join(r.root, "raw-crash")
	defer os.RemoveAll(rawDir)
	for i := range n + warmIterations {
		c, err := rawCrash(r.cfg.Shim, filepath.Join(rawDir, fmt.Sprintf("k%05d", i)), spec)
		if err != nil {
			return nil, fmt.Errorf("crash %d: raw: %w", i, err)
		}
		if i >= warmIterations {
			crashFloor = append(crashFloor, c)
		}
		st, err := sup.Status(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.State != messages.StateRunning {
			return nil, fmt.Errorf("crash %d: box is %s, want running", i, st.State)
		}
		guest, err := onlyChild(st.PID)
		if err != nil {
			return nil, fmt.Errorf("crash %d: %w", i, err)
		}
		t0 := time.Now()
		if err := killPID(guest); err != nil {
			return nil, fmt.Errorf("crash %d: %w", i, err)
		}
		took, err := awaitReady(readies, st.Generation, opTimeout)
		if err != nil {
			return nil, fmt.Errorf("crash %d: %w", i, err)
		}
		if i >= warmIterations {
			samples = append(samples, took.Sub(t0))
		}
	}
	fv := durationValue(*floor)
	row := Row{
		ID: "8", Operation: "restart after crash (SIGKILL to the guest → BoxReady of the restarted guest), policy always, no backoff", Unit: "ms",
		Floor:     &fv,
		FloorDesc: "row 1's floor: start→ready of the raw shim",
		Boxsup:    durationValue(Summarize(samples)),
		Target:    "p50 ≤ floor + 5 ms",
	}
	row.judge(func(r *Row) bool { return r.Boxsup.P50 <= r.Floor.P50+5 })
	cf := Summarize(crashFloor)
	row.Note = fmt.Sprintf("of which the shim's own crash handling (SIGKILL to a raw shim's guest until the shim's exit shows on its pidfd) takes p50 %.2f ms, p99 %.2f ms",
		ms(cf.P50), ms(cf.P99))
	return []Row{row}, nil
}

// rawCrash spawns a raw shim and times SIGKILL to its guest until the shim
// has exited (it notices the death, sweeps its group, writes exit.json):
// the part of a restart that belongs to the shim.
func rawCrash(shim, dir string, spec boxSpec) (time.Duration, error) {
	rs, _, release, err := readyRawShim(shim, dir, spec)
	if err != nil {
		return 0, err
	}
	defer release()
	guest, err := onlyChild(rs.pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := killPID(guest); err != nil {
		return 0, err
	}
	if err := rs.waitExit(opTimeout); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// awaitReady waits for a BoxReady of a generation after gen, or of a guest
// its shim restarted in place (the same generation), and returns when it
// arrived.
func awaitReady(readies <-chan messages.BoxReady, gen uint64, timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case rd := <-readies:
			if rd.Generation > gen || (rd.Generation == gen && rd.InPlace) {
				return time.Now(), nil
			}
		case <-t.C:
			return time.Time{}, fmt.Errorf("no BoxReady after generation %d within %v", gen, timeout)
		}
	}
}

// onlyChild returns the single child of pid (a shim's guest), waiting
// briefly for it to appear.
func onlyChild(pid int) (int, error) {
	deadline := time.Now().Add(opTimeout)
	for {
		kids, err := childrenOf(pid)
		if err == nil && len(kids) == 1 {
			return kids[0], nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("shim %d has children %v, want exactly one guest", pid, kids)
		}
		time.Sleep(time.Millisecond)
	}
}

// killPID sends SIGKILL through a pidfd.
func killPID(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// measureStartFloor runs n raw start→ready→stop cycles and summarises the
// start→ready times.
func (r *runner) measureStartFloor(spec boxSpec, n int) (Summary, error) {
	dir := filepath.Join(r.root, "raw-floor")
	defer os.RemoveAll(dir)
	var ds []time.Duration
	for i := range n {
		s, _, err := rawStartStop(r.cfg.Shim, filepath.Join(dir, fmt.Sprintf("f%05d", i)), spec)
		if err != nil {
			return Summary{}, err
		}
		ds = append(ds, s)
	}
	return Summarize(ds), nil
}
