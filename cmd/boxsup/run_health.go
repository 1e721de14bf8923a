package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/messages"
)

// healthFlags are boxsup run's health-check flags, named as docker run names
// them (--health-cmd, --health-interval, --health-timeout, --health-retries,
// --health-start-period, --health-start-interval, --no-healthcheck), plus
// one flag for each probe docker run has no flag for, and --ready-when.
// Zero settings take the defaults (docs/CLI-GUIDE.md, "Health checks").
type healthFlags struct {
	cmd           string // docker's CMD-SHELL: run with /bin/sh -c
	tcp           string
	http          string
	unix          string
	interval      time.Duration
	timeout       time.Duration
	retries       int
	startPeriod   time.Duration
	startInterval time.Duration
	none          bool
	readyWhen     string
}

func (h *healthFlags) register(f *pflag.FlagSet) {
	f.StringVar(&h.cmd, "health-cmd", "", "health check: a command run inside the box with /bin/sh -c; exit 0 is healthy")
	f.StringVar(&h.tcp, "health-tcp", "", "health check: HOST:PORT must accept a connection")
	f.StringVar(&h.http, "health-http", "", "health check: a GET of this http(s) URL must answer 2xx or 3xx")
	f.StringVar(&h.unix, "health-unix", "", "health check: this unix socket path must accept a connection")
	f.DurationVar(&h.interval, "health-interval", 0, "time between the end of a check and the next (0: 30s)")
	f.DurationVar(&h.timeout, "health-timeout", 0, "time a check may take before it fails (0: 30s)")
	f.IntVar(&h.retries, "health-retries", 0, "consecutive failures that make the box unhealthy (0: 3)")
	f.DurationVar(&h.startPeriod, "health-start-period", 0, "time after the start during which failures do not count (0: none)")
	f.DurationVar(&h.startInterval, "health-start-interval", 0, "time between checks during the start period (0: 5s)")
	f.BoolVar(&h.none, "no-healthcheck", false, "run no health check")
	f.StringVar(&h.readyWhen, "ready-when", "", "ready (default): the box is running once its runner signals ready; healthy: once its health check first passes")
}

// build returns the check the flags ask for (nil for none) and the ready
// condition. A setting without a check, two checks, --no-healthcheck with a
// check and --ready-when healthy without one are refused.
func (h *healthFlags) build() (*messages.HealthCheck, messages.ReadyCondition, error) {
	probes := 0
	for _, p := range []string{h.cmd, h.tcp, h.http, h.unix} {
		if p != "" {
			probes++
		}
	}
	settings := h.interval != 0 || h.timeout != 0 || h.retries != 0 || h.startPeriod != 0 || h.startInterval != 0
	ready := messages.ReadyCondition(h.readyWhen)
	switch {
	case probes > 1:
		return nil, "", messages.Errorf(messages.ErrBadSpec, "--health-cmd, --health-tcp, --health-http and --health-unix: give one of them")
	case h.none && (probes > 0 || settings):
		return nil, "", messages.Errorf(messages.ErrBadSpec, "--no-healthcheck cannot be combined with another --health-* flag")
	case probes == 0 && settings:
		return nil, "", messages.Errorf(messages.ErrBadSpec, "--health-interval, --health-timeout, --health-retries and --health-start-*: give a check too (--health-cmd, --health-tcp, --health-http or --health-unix)")
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--health-interval", h.interval}, {"--health-timeout", h.timeout}, {"--health-start-period", h.startPeriod}, {"--health-start-interval", h.startInterval}} {
		if d.v < 0 {
			return nil, "", messages.Errorf(messages.ErrBadSpec, "%s %v: must not be negative", d.flag, d.v)
		}
	}
	if h.retries < 0 {
		return nil, "", messages.Errorf(messages.ErrBadSpec, "--health-retries %d: must not be negative", h.retries)
	}
	var check *messages.HealthCheck
	if probes == 1 {
		check = &messages.HealthCheck{TCP: h.tcp, HTTP: h.http, Unix: h.unix,
			Interval: h.interval, Timeout: h.timeout, Retries: h.retries,
			StartPeriod: h.startPeriod, StartInterval: h.startInterval}
		if h.cmd != "" {
			check.Exec = []string{"/bin/sh", "-c", h.cmd}
		}
		if err := check.Validate(); err != nil {
			return nil, "", err
		}
	}
	if err := ready.Validate(check); err != nil {
		return nil, "", messages.Errorf(messages.ErrBadSpec, "--ready-when %s: want ready or healthy, and healthy needs a health check", h.readyWhen)
	}
	return check, ready, nil
}
