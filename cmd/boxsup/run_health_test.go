package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/messages"
)

func parseHealthFlags(t *testing.T, args ...string) (*messages.HealthCheck, messages.ReadyCondition, error) {
	t.Helper()
	var h healthFlags
	f := pflag.NewFlagSet("run", pflag.ContinueOnError)
	h.register(f)
	if err := f.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return h.build()
}

func TestHealthFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args  []string
		check *messages.HealthCheck
		ready messages.ReadyCondition
	}{
		{nil, nil, ""},
		{[]string{"--no-healthcheck"}, nil, ""},
		{[]string{"--health-cmd", "curl -f http://localhost/ || exit 1"},
			&messages.HealthCheck{Exec: []string{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}}, ""},
		{[]string{"--health-tcp", "127.0.0.1:5432", "--health-interval", "1s", "--health-timeout", "500ms", "--health-retries", "5",
			"--health-start-period", "1m", "--health-start-interval", "200ms", "--ready-when", "healthy"},
			&messages.HealthCheck{TCP: "127.0.0.1:5432", Interval: time.Second, Timeout: 500 * time.Millisecond, Retries: 5,
				StartPeriod: time.Minute, StartInterval: 200 * time.Millisecond}, messages.ReadyWhenHealthy},
		{[]string{"--health-http", "http://127.0.0.1:8080/healthz", "--ready-when", "ready"},
			&messages.HealthCheck{HTTP: "http://127.0.0.1:8080/healthz"}, messages.ReadyWhenReady},
		{[]string{"--health-unix", "/run/app.sock"}, &messages.HealthCheck{Unix: "/run/app.sock"}, ""},
	} {
		check, ready, err := parseHealthFlags(t, c.args...)
		if err != nil || !reflect.DeepEqual(check, c.check) || ready != c.ready {
			t.Errorf("%v: %+v %q %v, want %+v %q", c.args, check, ready, err, c.check, c.ready)
		}
	}
}

func TestHealthFlagsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--health-cmd", "true", "--health-tcp", "a:1"}, "give one of them"},
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck"},
		{[]string{"--no-healthcheck", "--health-retries", "2"}, "--no-healthcheck"},
		{[]string{"--health-interval", "5s"}, "give a check too"},
		{[]string{"--health-tcp", "a:1", "--health-interval", "-1s"}, "--health-interval -1s"},
		{[]string{"--health-tcp", "a:1", "--health-retries", "-2"}, "--health-retries -2"},
		{[]string{"--health-tcp", "a:1", "--health-interval", "1ms"}, "health_check.interval"},
		{[]string{"--health-tcp", "nonsense"}, "health_check.tcp"},
		{[]string{"--health-http", "ftp://a/"}, "health_check.http"},
		{[]string{"--health-unix", "relative.sock"}, "health_check.unix"},
		{[]string{"--ready-when", "healthy"}, "--ready-when healthy"},
		{[]string{"--health-tcp", "a:1", "--ready-when", "live"}, "--ready-when live"},
	} {
		_, _, err := parseHealthFlags(t, c.args...)
		if !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v: %v, want ErrBadSpec saying %q", c.args, err, c.says)
		}
	}
}
