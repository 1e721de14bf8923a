package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/declare"
	"github.com/boxsup/boxsup/messages"
)

// applyRatioTarget is row 9's target: a file of Boxes boxes is applied
// within 1.2 times the time of as many Starts through the library.
const applyRatioTarget = 1.2

// applyRows measures row 9: apply a file that declares Boxes independent
// boxes (one wave), from reading the file to every box ready, against
// Boxes concurrent Supervisor.Start calls, in Rounds rounds that alternate
// which goes first. Each side gets a fresh home and supervisor.
func (r *runner) applyRows(ctx context.Context) ([]Row, error) {
	spec, err := sleeperSpec()
	if err != nil {
		return nil, err
	}
	n := r.cfg.Boxes
	file, err := r.writeBoxesFile(spec, n)
	if err != nil {
		return nil, err
	}
	var viaApply, viaStart []time.Duration
	var failed error
rounds:
	for round := range r.cfg.Rounds {
		r.progress("row 9, round %d/%d: apply a file of %d boxes", round+1, r.cfg.Rounds, n)
		apply := func() error {
			d, err := r.timeApply(ctx, file, round)
			if err == nil {
				viaApply = append(viaApply, d)
			}
			return err
		}
		library := func() error {
			d, err := r.timeStarts(ctx, spec, n, round)
			if err == nil {
				viaStart = append(viaStart, d)
			}
			return err
		}
		steps := []func() error{apply, library}
		if round%2 == 1 {
			steps = []func() error{library, apply}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				failed = fmt.Errorf("round %d: %w", round, err)
				break rounds
			}
			if err := ctx.Err(); err != nil {
				failed = err
				break rounds
			}
		}
	}
	if len(viaApply) == 0 || len(viaStart) == 0 {
		return nil, failed
	}
	floor := roundsValue(viaStart)
	row := Row{
		ID: "9", Operation: fmt.Sprintf("apply a file declaring %d boxes until all ready", n), Unit: "ms",
		Floor:     &floor,
		FloorDesc: fmt.Sprintf("%d concurrent Supervisor.Start calls with the same spec, until all ready", n),
		Boxsup:    roundsValue(viaApply),
		Target:    fmt.Sprintf("p50 ≤ %.1f× floor", applyRatioTarget),
		Note: fmt.Sprintf("declare.LoadFile + List + ComputePlan + Apply in one wave; p50 is the median, p99 the worst of %d rounds. "+
			"Labels are kept beside the supervisor (it stores none yet)", len(viaApply)),
	}
	row.judge(func(r *Row) bool { return r.Ratio != nil && *r.Ratio <= applyRatioTarget })
	return []Row{row}, failed
}

// writeBoxesFile writes a boxes file of n boxes running spec.
func (r *runner) writeBoxesFile(spec boxSpec, n int) (string, error) {
	var b strings.Builder
	b.WriteString("boxes:\n")
	cmd := make([]string, 0, 1+len(spec.args))
	for _, a := range append([]string{spec.executable}, spec.args...) {
		cmd = append(cmd, strconv.Quote(a))
	}
	for i := range n {
		fmt.Fprintf(&b, "  a%05d:\n    command: [%s]\n", i, strings.Join(cmd, ", "))
	}
	dir := filepath.Join(r.root, "apply-file")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "boxes.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// timeApply applies file to a fresh supervisor and returns the time from
// reading the file to the last box ready.
func (r *runner) timeApply(ctx context.Context, file string, round int) (time.Duration, error) {
	home := r.newHome(fmt.Sprintf("apply-%d", round))
	sup, err := r.newSupervisor(home)
	if err != nil {
		return 0, err
	}
	defer stopAll(sup)
	target := &libraryTarget{sup: sup, labels: map[string]map[string]string{}}
	t0 := time.Now()
	f, err := declare.LoadFile(file, declare.Options{})
	if err != nil {
		return 0, err
	}
	cur, err := target.List(ctx)
	if err != nil {
		return 0, err
	}
	plan, err := declare.ComputePlan(f, cur)
	if err != nil {
		return 0, err
	}
	if _, err := declare.Apply(ctx, target, plan, declare.ApplyOptions{}); err != nil {
		return 0, fmt.Errorf("apply: %w", firstLine(err))
	}
	took := time.Since(t0)
	if err := stopAll(sup); err != nil {
		return 0, err
	}
	return took, os.RemoveAll(home)
}

// timeStarts starts n boxes through the library from n goroutines.
func (r *runner) timeStarts(ctx context.Context, spec boxSpec, n int, round int) (time.Duration, error) {
	home := r.newHome(fmt.Sprintf("apply-floor-%d", round))
	sup, err := r.newSupervisor(home)
	if err != nil {
		return 0, err
	}
	defer stopAll(sup)
	req := spec.instance()
	req.Detach = true // as declared boxes are
	took, errs := parallel(n, func(i int) error {
		_, err := sup.Start(ctx, messages.StartBox{ID: fmt.Sprintf("a%05d", i), Spec: req})
		return err
	})
	if err := firstErrors(errs); err != nil {
		return 0, err
	}
	if err := stopAll(sup); err != nil {
		return 0, err
	}
	return took, os.RemoveAll(home)
}

// firstLine keeps a joined error of many failures readable.
func firstLine(err error) error {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return fmt.Errorf("%s (and more)", s[:i])
	}
	return err
}

// libraryTarget is declare.Backend over a Supervisor in this process. The
// supervisor stores no labels yet, so they are kept here, in memory: the
// cost of storing them in state.json, a few dozen bytes per box in a write
// that happens anyway, is not measured.
type libraryTarget struct {
	sup    *actors.Supervisor
	mu     sync.Mutex
	labels map[string]map[string]string
}

func (t *libraryTarget) Capabilities() declare.Capabilities {
	return declare.Capabilities{Labels: true}
}

func (t *libraryTarget) List(ctx context.Context) ([]declare.Existing, error) {
	boxes, err := t.sup.List(ctx, actors.ListOptions{})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]declare.Existing, len(boxes))
	for i, st := range boxes {
		out[i] = declare.Existing{ID: st.ID, State: st.State, Labels: maps.Clone(t.labels[st.ID])}
	}
	return out, nil
}

func (t *libraryTarget) Create(ctx context.Context, b *declare.DeclaredBox, labels map[string]string) error {
	if _, err := t.sup.Start(ctx, b.Start); err != nil {
		return err
	}
	t.mu.Lock()
	t.labels[b.ID()] = labels
	t.mu.Unlock()
	return nil
}

func (t *libraryTarget) StartExisting(ctx context.Context, id string) error {
	_, err := t.sup.StartExisting(ctx, id)
	return err
}

func (t *libraryTarget) Update(context.Context, *declare.DeclaredBox, map[string]string) error {
	return messages.Errorf(messages.ErrBadSpec, "update in place is not supported")
}

func (t *libraryTarget) Remove(ctx context.Context, id string) error {
	_, err := t.sup.Remove(ctx, id, true)
	return err
}

func (t *libraryTarget) WaitHealthy(context.Context, string) error {
	return messages.Errorf(messages.ErrBadSpec, "health checks are not supported")
}
