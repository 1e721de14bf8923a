package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/declare"
	"github.com/boxsup/boxsup/logging"
)

// applyOptions are boxsup apply's flags.
type applyOptions struct {
	file     string
	dryRun   bool
	parallel int
}

func (a *app) applyCommand() *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--parallel N]",
		Short: "Create, replace, update and remove boxes to match a file",
		Long: "Make the boxes match the boxes file FILE (format: docs/DECLARE.md).\n\n" +
			"apply prints a plan first, in the manner of terraform plan: the boxes it will create,\n" +
			"replace (their command, environment, secrets, work directory, engine, resources or\n" +
			"health check changed: stopped, removed and created again), update in place (restart\n" +
			"policy, stop timeout or labels), start again (at rest), and remove (created by this\n" +
			"file and no longer declared). With --dry-run it stops there. Then it carries the plan\n" +
			"out: removals first, replacements' dependents before their dependencies, then wave by\n" +
			"wave in dependency order, every box of a wave at once (at most --parallel). A box whose\n" +
			"dependency failed is not started. Each box's ID is printed with what was done to it.\n\n" +
			"apply records in labels which boxes a file created (boxsup.dev/apply-id, from the\n" +
			"file's absolute path), so it never removes or takes over a box it did not create: a\n" +
			"declared ID taken by another box is refused. A plan the supervisor cannot honour\n" +
			"(today: health checks, a healthy condition) is refused before anything changes.\n" +
			"Secret values are never printed.\n\n" +
			"Exit status: 0 when every box is as declared, 1 when the plan was refused or a box\n" +
			"failed, 2 for a usage error.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.file == "" {
				return usageError(fmt.Errorf("-f FILE is required"))
			}
			if o.parallel < 0 {
				return usageError(fmt.Errorf("--parallel %d: must not be negative", o.parallel))
			}
			return a.apply(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "the boxes file (YAML)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.IntVar(&o.parallel, "parallel", 0, "boxes started or stopped at once within a wave (0: all)")
	return cmd
}

// apply loads the file, connects, prints the plan and carries it out.
func (a *app) apply(ctx context.Context, o applyOptions) error {
	file, err := declare.LoadFile(o.file, declare.Options{})
	if err != nil {
		return err
	}
	defer logging.RegisterSecrets(file.SecretValues()...)()
	b, err := a.connect(ctx, false)
	if err != nil {
		return err
	}
	defer b.Close()
	err = applyFile(ctx, applyTarget{b: b}, file, o, a.stdout, a.stderr)
	var failures *applyFailures
	if errors.As(err, &failures) {
		return exitWith(exitError) // each failure is printed already
	}
	return err
}

// applyFailures is the error of an apply in which boxes failed; each
// failure was printed as it happened.
type applyFailures struct{ err error }

func (e *applyFailures) Error() string { return e.err.Error() }
func (e *applyFailures) Unwrap() error { return e.err }

// applyFile plans file against target, prints the plan to out and, unless
// a dry run, applies it, printing each box's outcome. It is what apply and
// supervise --config share.
func applyFile(ctx context.Context, target declare.Backend, file *declare.BoxesFile, o applyOptions, out, errOut io.Writer) error {
	current, err := target.List(ctx)
	if err != nil {
		return err
	}
	plan, err := declare.ComputePlan(file, current)
	if err != nil {
		return err
	}
	if err := plan.Render(out); err != nil {
		return err
	}
	if err := declare.Check(plan, target.Capabilities()); err != nil {
		return err
	}
	if o.dryRun || plan.Empty() {
		return nil
	}
	fmt.Fprintln(out)
	var mu sync.Mutex
	_, err = declare.Apply(ctx, target, plan, declare.ApplyOptions{
		Parallel: o.parallel,
		Progress: func(oc declare.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			if oc.Err != nil {
				fmt.Fprintf(errOut, "boxsup: %v\n", oc.Err)
				return
			}
			if oc.Action != declare.ActionNone {
				fmt.Fprintf(out, "%s: %s\n", oc.ID, pastTense[oc.Action])
			}
		},
	})
	if err != nil {
		return &applyFailures{err: err}
	}
	return nil
}

// pastTense says what was done, for apply's progress lines.
var pastTense = map[declare.Action]string{
	declare.ActionCreate:  "created",
	declare.ActionReplace: "replaced",
	declare.ActionUpdate:  "updated",
	declare.ActionStart:   "started",
	declare.ActionRemove:  "removed",
}

// applyConfig applies the boxes file path to the supervisor this process
// runs (supervise --config), logging the plan and outcome. It is called at
// start and on SIGHUP.
func (a *app) applyConfig(ctx context.Context, local *control.Local, path string) error {
	file, err := declare.LoadFile(path, declare.Options{})
	if err != nil {
		return err
	}
	// The secrets stay registered for the process's life: the supervisor
	// keeps those boxes' specs, and may log about them at any time.
	logging.RegisterSecrets(file.SecretValues()...)
	entry := a.log.WithField("config", file.Path)
	return applyFile(ctx, applyTarget{b: local}, file, applyOptions{},
		lineLogger{entry, logrus.InfoLevel}, lineLogger{entry, logrus.WarnLevel})
}

// lineLogger logs each line written to it as one entry.
type lineLogger struct {
	entry *logrus.Entry
	level logrus.Level
}

func (l lineLogger) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line = strings.TrimRight(line, " "); line != "" {
			l.entry.Log(l.level, strings.TrimPrefix(line, "boxsup: "))
		}
	}
	return len(p), nil
}
