package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/promexport"
)

// superviseShutdownTimeout bounds the shutdown after SIGTERM/SIGINT; with
// --stop-on-exit each box gets at most this long to stop.
const superviseShutdownTimeout = 60 * time.Second

func (a *app) superviseCommand() *cobra.Command {
	var metricsAddr, config string
	var stopOnExit bool
	var member superviseClusterFlags
	cmd := &cobra.Command{
		Use:   "supervise [--metrics-addr ADDR] [--stop-on-exit] [--config FILE]",
		Short: "Run the long-lived supervisor of the home",
		Long: "Hold the home's lock, adopt every running box, apply restart policies, and serve\n" +
			"the control API on a Unix socket in the home (mode 0600; only the same uid and root\n" +
			"are answered) so that every other boxsup command goes through this process.\n\n" +
			"With --metrics-addr, serve Prometheus metrics at http://ADDR/metrics. The endpoint\n" +
			"has no authentication: keep it on loopback (e.g. " + promexport.DefaultMetricsAddr + ") unless you\n" +
			"mean to expose it.\n\n" +
			"On SIGTERM or SIGINT the supervisor exits and leaves detached boxes running for the\n" +
			"next one to adopt (attached boxes stop with it); --stop-on-exit stops every box first.\n\n" +
			"The supervisor keeps its last 10000 lifecycle events in memory, for boxsup events\n" +
			"--since; they are lost when it exits.\n\n" +
			"With --config FILE, apply the boxes file FILE (as boxsup apply -f FILE does) once the\n" +
			"control socket is up, and again on each SIGHUP; the plan and outcome are logged. A file\n" +
			"that cannot be applied at start stops the supervisor; on SIGHUP the error is logged and\n" +
			"the supervisor goes on.\n\n" +
			"With --cluster NAME --etcd URL --node NAME --advertise HOST:PORT and the TLS files\n" +
			"(--tls-ca, --tls-cert, --tls-key; or --insecure-cluster on a test network), the\n" +
			"supervisor is a member of a boxsup cluster: see docs/CLUSTER.md.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cluster, err := a.memberConfig(&member, cmd.Flags())
			if err != nil {
				return err
			}
			return a.supervise(metricsAddr, config, stopOnExit, cluster)
		},
	}
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address, e.g. "+promexport.DefaultMetricsAddr+" (default: off)")
	cmd.Flags().BoolVar(&stopOnExit, "stop-on-exit", false, "stop every box when the supervisor exits")
	cmd.Flags().StringVar(&config, "config", "", "boxes file to apply at start and on SIGHUP")
	member.register(cmd.Flags())
	return cmd
}

func (a *app) supervise(metricsAddr, config string, stopOnExit bool, cluster *actors.ClusterConfig) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	cfg := a.config()
	cfg.Cluster = cluster
	cfg.EventHistory = actors.DefaultEventHistory // for boxsup events --since
	sup, err := actors.NewSupervisor(context.Background(), cfg)
	if err != nil {
		return err
	}
	mode := actors.LeaveRunning
	if stopOnExit {
		mode = actors.StopAll
	}
	var closers []func(context.Context) error
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), superviseShutdownTimeout)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](ctx); err != nil {
				a.log.WithError(err).Warn("shutting down")
			}
		}
	}()
	closers = append(closers, func(ctx context.Context) error { return sup.Shutdown(ctx, mode) })

	opts := control.ServerOptions{Logger: a.log}
	fields := logrus.Fields{"home": sup.Home(), "pid": os.Getpid()}
	if cluster != nil {
		fields["cluster"], fields["node"] = cluster.Name, cluster.Node
	}
	if metricsAddr != "" {
		exp := promexport.NewExporter(control.NewLocal(sup), 0)
		unfollow := exp.Follow(sup)
		closers = append(closers, func(context.Context) error { unfollow(); return nil })
		reg, err := promexport.NewRegistry(exp)
		if err != nil {
			return err
		}
		ms, err := promexport.ServeMetrics(metricsAddr, reg)
		if err != nil {
			return err
		}
		closers = append(closers, ms.Close)
		opts.OnStop = exp.ObserveStop
		fields["metrics_addr"] = ms.Addr()
	}

	home, err := layout.Open(sup.Home())
	if err != nil {
		return err
	}
	sock, err := home.ControlSocketPath()
	if err != nil {
		return err
	}
	srv, err := control.Listen(sup, sock, opts)
	if err != nil {
		return err
	}
	closers = append(closers, func(context.Context) error { return srv.Close() })
	fields["socket"] = sock

	boxes, err := sup.List(context.Background(), actors.ListOptions{})
	if err != nil {
		return err
	}
	fields["boxes"] = len(boxes)
	a.log.WithFields(fields).Info("supervising")
	if config != "" {
		if err := a.applyConfig(context.Background(), control.NewLocal(sup), config); err != nil {
			return err
		}
	}

	sig := <-sigs
	for ; sig == syscall.SIGHUP; sig = <-sigs {
		if config == "" {
			a.log.Info("SIGHUP ignored: no --config to apply")
			continue
		}
		if err := a.applyConfig(context.Background(), control.NewLocal(sup), config); err != nil {
			a.log.WithError(err).Error("applying --config on SIGHUP; the boxes stay as they are")
		}
	}
	entry := a.log.WithField("signal", sig.String())
	if stopOnExit {
		entry.Info("stopping every box, then exiting")
	} else {
		entry.Info("exiting; boxes keep running for the next supervisor")
	}
	return nil
}
