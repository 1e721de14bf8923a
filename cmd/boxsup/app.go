package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// app holds the global flags and what every command shares.
type app struct {
	home      string
	logLevel  string
	logFormat string
	shim      string

	// clusterFlags are the cluster flags as typed; cluster is what they
	// and the cluster file resolve to (nil: no cluster, the home alone).
	clusterFlags clusterFlags
	cluster      *clusterFlags

	stdout io.Writer
	stderr io.Writer
	log    *logrus.Logger

	// lockWait, when longer than control.DefaultLockWait, is how long a
	// command with a longer bound of its own (stop --timeout) queues for
	// the home lock.
	lockWait time.Duration

	hooks appHooks
}

// appHooks let tests act at chosen points of a command run in-process.
type appHooks struct {
	// consoleOpen is called by a foreground run's console follower before
	// it opens the box's log, with the channel that is closed once the box
	// is at rest.
	consoleOpen func(ended <-chan struct{})
}

// execute runs boxsup with args and returns the process exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	return (&app{stdout: stdout, stderr: stderr}).execute(args)
}

// execute runs the command line args (tests run it in-process, with
// hooks) and returns the exit code.
func (a *app) execute(args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
	case ctx.Err() != nil && isContextErr(err):
		err = &exitCodeError{code: exitInterrupted, err: errors.New("interrupted")}
	case strings.HasPrefix(err.Error(), "unknown command"):
		err = usageError(err) // cobra has no typed error for it
	}
	return reportError(a.stderr, err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "boxsup",
		Short: "Supervise boxes: processes and micro-VMs behind a shim",
		Long: "boxsup runs commands in supervised boxes. Every command works the same with or\n" +
			"without a running `boxsup supervise`: when one serves the home, commands go\n" +
			"through its control socket; otherwise they open the home themselves.",
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: a.setUp,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.home, "home", "", "state directory (default $BOXSUP_HOME, else $XDG_STATE_HOME/boxsup, else ~/.local/state/boxsup)")
	pf.StringVar(&a.logLevel, "log-level", "", "trace|debug|info|warn|error (default $BOXSUP_LOG, else warn; info for supervise)")
	pf.StringVar(&a.logFormat, "log-format", "text", "text|json")
	pf.StringVar(&a.shim, "shim", "", "box runner (shim) binary (default boxsup-shim beside boxsup, else on PATH)")
	a.clusterFlags.register(pf)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		// A flag's value is quoted ("invalid argument ... for --stop-timeout"):
		// never a secret given with --secret-env, if one was pasted there.
		return usageError(messages.RedactSecrets(err, argSecretValues(os.Args[1:])))
	})
	root.AddCommand(
		a.runCommand(), a.startCommand(), a.psCommand(), a.stopCommand(), a.killCommand(), a.logsCommand(),
		a.metricsCommand(), a.rmCommand(), a.superviseCommand(), a.demoCommand(), a.infoCommand(), a.clusterCommand(),
		a.applyCommand(), a.topCommand(), a.inspectCommand(), a.eventsCommand(), a.updateCommand(), a.completionCommand(root),
	)
	a.addCompletions(root)
	return root
}

// setUp builds the logger once the flags are parsed. Commands other than
// supervise log at warn by default, so their output stays clean.
func (a *app) setUp(cmd *cobra.Command, _ []string) error {
	level := a.logLevel
	if level == "" && os.Getenv(logging.LevelEnv) == "" {
		level = "warn"
		if cmd.Name() == "supervise" {
			level = "info"
		}
	}
	log, err := logging.New(logging.Options{Level: level, Format: a.logFormat, Out: a.stderr})
	if err != nil {
		return usageError(err) // a bad --log-level or --log-format
	}
	a.log = log
	if a.cluster, err = a.clusterFlags.resolve(cmd.Flags()); err != nil {
		return err
	}
	return nil
}

// config is the supervisor configuration for commands that open the home
// in-process.
func (a *app) config() actors.Config {
	return actors.Config{Home: a.home, ShimBinary: a.shim, Logger: a.log}
}

// connectAttached is connect for a command that runs an attached box (a
// foreground run): it serves the home meanwhile, and never goes through
// another command's temporary server, in which the box would die with that
// command; it queues for the home instead.
func (a *app) connectAttached(ctx context.Context) (control.Backend, error) {
	return a.connectWith(ctx, true, true)
}

// connect reaches the home's supervisor: through its control socket when a
// boxsup supervise serves it, else in-process. serve makes an in-process
// supervisor serve the socket itself meanwhile (for long-running commands).
func (a *app) connect(ctx context.Context, serve bool) (control.Backend, error) {
	return a.connectWith(ctx, serve, false)
}

func (a *app) connectWith(ctx context.Context, serve, attach bool) (control.Backend, error) {
	if a.cluster != nil {
		return a.connectCluster(ctx)
	}
	b, err := control.Connect(ctx, a.home, control.ConnectOptions{
		Config:   a.config(),
		Serve:    serve,
		Attach:   attach,
		LockWait: max(a.lockWait, control.DefaultLockWait),
		Notice:   func(msg string) { fmt.Fprintf(a.stderr, "boxsup: %s\n", msg) },
	})
	if err != nil {
		return nil, err
	}
	if control.Remote(b) && a.shim != "" {
		_ = b.Close()
		return nil, messages.Errorf(messages.ErrBadSpec,
			"--shim cannot be used while a supervisor serves this home: it starts boxes with its own shim (restart `boxsup supervise --shim PATH` instead)")
	}
	return b, nil
}

// exactArgs and minArgs are cobra's argument checks, reported as usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError(err)
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError(err)
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError(err)
	}
	return nil
}

// isContextErr reports an interrupted or timed-out call.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
