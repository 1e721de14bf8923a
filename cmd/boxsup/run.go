package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// defaultGuestPath is the guest's PATH when boxsup's own environment has none.
const defaultGuestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runOptions are boxsup run's flags.
type runOptions struct {
	detach       bool
	name         string
	restart      string
	maxRestarts  int
	stopTimeout  time.Duration
	readyTimeout time.Duration
	resources    resourceFlags
	env          []string
	secretEnv    []string
	remove       bool
	workDir      string
	security     securityFlags
	health       healthFlags
	labels       []string
	format       string
	placement    placementFlags
}

func (a *app) runCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [flags] [--] CMD [ARG...]",
		Short: "Run a command in a new box",
		Long: "Run CMD in a new box with the reference shim.\n\n" +
			"In the foreground the box's console output streams to standard output, Ctrl-C or\n" +
			"SIGTERM stops it gracefully (a second one kills it), and boxsup exits with the box's\n" +
			"exit code (128+N when it died of signal N). With -d boxsup prints the box ID once the\n" +
			"box is running and exits 0; the box outlives the command.\n\n" +
			"The guest's environment is PATH and HOME from boxsup's environment plus -e and\n" +
			"--secret-env; its working directory is boxsup's (or -w). Secret values reach only the guest's\n" +
			"environment; prefer --secret-env KEY (value taken from boxsup's environment) so the\n" +
			"value is not on boxsup's own command line either.\n\n" +
			"--user, --group-add, --ulimit, --network none, --pid private, --security-opt and\n" +
			"--env-clear confine the guest (docs/SECURITY.md). A setting the box's engine cannot\n" +
			"honour is refused, never silently dropped.\n\n" +
			"--label KEY=VALUE labels the box (Kubernetes' syntax for keys and values); ps, events\n" +
			"and List select by them, and update changes them. With -d and --format json, the\n" +
			"box's status is printed as JSON instead of its ID.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("name") && o.name == "" {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--name: must not be empty (leave it out for a random ID)"))
			}
			if err := checkFormat(o.format); err != nil {
				return err
			}
			if o.format == formatJSON && !o.detach {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--format json needs -d: in the foreground the box's console is the output"))
			}
			req, secrets, err := buildStartRequest(&o, args)
			if err != nil {
				return asUsageError(err)
			}
			if req.Placement, err = a.placementOf(&o.placement, cmd.Flags()); err != nil {
				return err
			}
			defer logging.RegisterSecrets(secrets...)()
			if o.detach {
				return a.runDetached(cmd, req, o.format)
			}
			return a.runForeground(cmd, &o, req)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // everything after CMD belongs to CMD
	f.BoolVarP(&o.detach, "detach", "d", false, "run in the background: print the box ID once it is running and exit")
	f.StringVar(&o.name, "name", "", "box ID (default: a short random ID)")
	f.StringVar(&o.restart, "restart", "no", "restart policy: no|on-failure|always|on-unhealthy (on-unhealthy needs a health check)")
	f.IntVar(&o.maxRestarts, "max-restarts", 0, "restarts allowed within a minute before the box fails (0: 5; negative: unlimited)")
	f.DurationVar(&o.stopTimeout, "stop-timeout", messages.DefaultStopTimeout, "grace between SIGTERM and SIGKILL when the box is stopped")
	f.DurationVar(&o.readyTimeout, "ready-timeout", messages.DefaultReadyTimeout, "how long the box may take to become ready")
	o.resources.register(f)
	f.StringArrayVarP(&o.env, "env", "e", nil, "set KEY=VAL in the guest's environment (KEY alone: copy boxsup's value); repeatable")
	f.StringArrayVar(&o.secretEnv, "secret-env", nil, "set a secret KEY=VAL in the guest's environment, never logged or shown (KEY alone: take boxsup's value); repeatable")
	f.BoolVar(&o.remove, "rm", false, "remove the box once it has exited (foreground only)")
	f.StringVarP(&o.workDir, "workdir", "w", "", "the guest's working directory (default: boxsup's)")
	o.security.register(f)
	o.health.register(f)
	f.StringArrayVar(&o.labels, "label", nil, "set a label KEY=VALUE on the box; repeatable")
	f.StringVar(&o.format, "format", formatTable, "output format of -d: table (the ID) or json (the status)")
	o.placement.register(f)
	return cmd
}

// buildStartRequest turns run's flags and arguments into a StartBox, and
// returns the secret values (for log redaction). It validates what the flags
// alone can tell; the supervisor validates the rest before anything is
// written.
func buildStartRequest(o *runOptions, args []string) (_ messages.StartBox, _ []string, err error) {
	// The secrets first: no error below may quote one (a malformed flag's
	// value is quoted, and a secret can be pasted into the wrong flag).
	secrets, values, err := secretVars(o.secretEnv)
	if err != nil {
		return messages.StartBox{}, nil, err
	}
	defer func() { err = messages.RedactSecrets(err, values) }()
	mode, err := messages.ParseRestartMode(o.restart)
	if err != nil {
		return messages.StartBox{}, nil, err
	}
	if o.detach && o.remove {
		return messages.StartBox{}, nil, messages.Errorf(messages.ErrBadSpec, "--rm cannot be combined with -d")
	}
	if o.stopTimeout < 0 || o.readyTimeout < 0 {
		return messages.StartBox{}, nil, messages.Errorf(messages.ErrBadSpec, "--stop-timeout and --ready-timeout must not be negative")
	}
	env, err := guestEnv(o.env, o.security.envClear)
	if err != nil {
		return messages.StartBox{}, nil, err
	}
	wd := o.workDir
	if wd == "" {
		if wd, err = os.Getwd(); err != nil {
			return messages.StartBox{}, nil, fmt.Errorf("working directory: %w", err)
		}
	} else if wd, err = filepath.Abs(wd); err != nil {
		return messages.StartBox{}, nil, fmt.Errorf("--workdir: %w", err)
	}
	labels, err := parseLabelFlags("--label", o.labels)
	if err != nil {
		return messages.StartBox{}, nil, err
	}
	id := o.name
	if id == "" {
		id = randomID()
	}
	spec := messages.InstanceSpec{
		Engine: messages.EngineProcess,
		GuestEntrypoint: messages.Entrypoint{
			Executable: args[0],
			Args:       args[1:],
			Env:        env,
			WorkDir:    wd,
		},
		Secrets: secrets,
		Detach:  o.detach,
	}
	// Security first: --pids-limit refuses to disagree with the
	// max_processes that --ulimit nproc may have set.
	if err := o.security.apply(&spec); err != nil {
		return messages.StartBox{}, nil, err
	}
	if err := o.resources.apply(&spec); err != nil {
		return messages.StartBox{}, nil, err
	}
	check, readyWhen, err := o.health.build()
	if err != nil {
		return messages.StartBox{}, nil, err
	}
	if mode == messages.RestartOnUnhealthy && check == nil {
		return messages.StartBox{}, nil, messages.Errorf(messages.ErrBadSpec, "--restart on-unhealthy needs a health check (--health-cmd, --health-tcp, --health-http or --health-unix)")
	}
	return messages.StartBox{
		ID:           id,
		Spec:         spec,
		Restart:      messages.RestartPolicy{Mode: mode, MaxRestarts: o.maxRestarts},
		StopTimeout:  o.stopTimeout,
		ReadyTimeout: o.readyTimeout,
		HealthCheck:  check,
		ReadyWhen:    readyWhen,
		Labels:       labels,
	}, values, nil
}

// guestEnv is the guest's environment: PATH and HOME from ours (the guest
// inherits nothing else; with --env-clear, not even those: the shim then
// gives a guest without PATH a minimal one), then the -e entries.
func guestEnv(entries []string, envClear bool) ([]string, error) {
	var env []string
	if !envClear {
		path := os.Getenv("PATH")
		if path == "" {
			path = defaultGuestPath
		}
		env = append(env, "PATH="+path)
		if home := os.Getenv("HOME"); home != "" {
			env = append(env, "HOME="+home)
		}
	}
	for _, e := range entries {
		key, val, ok := strings.Cut(e, "=")
		if key == "" {
			return nil, messages.Errorf(messages.ErrBadSpec, "-e %q: want KEY=VAL or KEY", e)
		}
		if !ok {
			v, set := os.LookupEnv(key)
			if !set {
				continue // as docker does: an unset variable is not passed
			}
			val = v
		}
		env = append(env, key+"="+val)
	}
	return env, nil
}

// secretVars parses --secret-env entries. The error messages name the
// variable, never its value.
func secretVars(entries []string) ([]messages.SecretVar, []string, error) {
	var vars []messages.SecretVar
	var values []string
	for i, e := range entries {
		key, val, ok := strings.Cut(e, "=")
		if key == "" {
			return nil, nil, messages.Errorf(messages.ErrBadSpec, "--secret-env #%d: want KEY=VAL or KEY", i+1)
		}
		if !ok {
			v, set := os.LookupEnv(key)
			if !set {
				return nil, nil, messages.Errorf(messages.ErrBadSpec, "--secret-env %s: not set in boxsup's environment", key)
			}
			val = v
		}
		vars = append(vars, messages.SecretVar{Name: key, Value: messages.NewSecret(val)})
		values = append(values, val)
	}
	return vars, values, nil
}

// argSecretValues returns the values of the --secret-env flags among args,
// as far as they can be read (KEY=VAL, or KEY from the environment), for
// scrubbing errors raised before the flags were parsed.
func argSecretValues(args []string) []string {
	var entries []string
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		switch a := args[i]; {
		case a == "--secret-env" && i+1 < len(args):
			i++
			entries = append(entries, args[i])
		case strings.HasPrefix(a, "--secret-env="):
			entries = append(entries, strings.TrimPrefix(a, "--secret-env="))
		}
	}
	var values []string
	for _, e := range entries {
		if _, vals, err := secretVars([]string{e}); err == nil {
			values = append(values, vals...)
		}
	}
	return values
}

// randomID returns a short random box ID: 12 hex digits (48 random bits,
// so a collision, which Start reports as ErrAlreadyExists, is negligible).
func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

// runDetached starts a detached box and prints its ID (or, in JSON, its
// status) once it is running.
func (a *app) runDetached(cmd *cobra.Command, req messages.StartBox, format string) error {
	ctx := cmd.Context()
	b, err := a.connect(ctx, false)
	if err != nil {
		return err
	}
	defer b.Close()
	st, err := b.Start(ctx, req)
	if err != nil {
		return a.startFailed(ctx, b, req.ID, err)
	}
	if a.cluster == nil && !control.Remote(b) && req.Restart.Mode != messages.RestartNo {
		fmt.Fprintf(a.stderr, "boxsup: note: no `boxsup supervise` serves this home; box %s's restart policy applies only while a supervisor runs\n", st.ID)
	}
	if format == formatJSON {
		st.Err = nil
		return writeJSON(a.stdout, st)
	}
	fmt.Fprintln(a.stdout, st.ID)
	return nil
}
