package messages

import (
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HealthCheck describes a box's health check: one probe, run by the
// supervisor (never by the shim) every Interval while the box runs, and the
// rules that turn its results into a HealthState. Exactly one of Exec, TCP,
// HTTP and Unix is set. Zero settings take the defaults below, which are
// Docker's HEALTHCHECK defaults.
//
// The probes:
//   - Exec: a command run inside the box: in the generation's cgroup, in the
//     guest's PID, network and mount namespaces when it has its own, as the
//     guest's uid, gid and groups, with the guest's environment (secrets
//     included, as Docker gives a check the container's environment) and
//     working directory. Exit status 0 is a pass. Argv[0] is looked up in
//     that environment's PATH. Docker's `CMD-SHELL cmd` is
//     ["/bin/sh", "-c", "cmd"].
//   - TCP: "host:port" accepts a connection (closed at once).
//   - HTTP: a GET of an http:// or https:// URL answers a status in
//     HTTPStatus (default 200–399). Certificates are not verified (as
//     Kubernetes' probes), no proxy is used, and at most 3 redirects are
//     followed, to the same host and port only.
//   - Unix: an absolute socket path accepts a connection.
//
// A box with its own network namespace (disable_network) is probed from
// inside it, so its TCP and HTTP checks must name a loopback address.
type HealthCheck struct {
	Exec []string `json:"exec,omitempty"`
	TCP  string   `json:"tcp,omitempty"`
	HTTP string   `json:"http,omitempty"`
	Unix string   `json:"unix,omitempty"`
	// HTTPStatus is the range of statuses an HTTP check accepts; nil means
	// 200–399.
	HTTPStatus *HTTPStatusRange `json:"http_status,omitempty"`

	// Interval is the time from the end of one probe to the start of the
	// next (default 30 s).
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout bounds one probe; a probe that takes longer fails, and an
	// exec probe's whole process group is killed (default 30 s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retries is the number of consecutive failures that make a box
	// unhealthy (default 3).
	Retries int `json:"retries,omitempty"`
	// StartPeriod is the time after the box became ready during which
	// failures do not count, for a guest that starts slowly (default 0).
	// It ends early at the first pass.
	StartPeriod time.Duration `json:"start_period,omitempty"`
	// StartInterval replaces Interval during the start period, until the
	// first pass, so that a box waiting to be healthy is probed often
	// (default 5 s).
	StartInterval time.Duration `json:"start_interval,omitempty"`
}

// HTTPStatusRange is an inclusive range of HTTP status codes.
type HTTPStatusRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Contains reports whether status lies in the range.
func (r HTTPStatusRange) Contains(status int) bool { return status >= r.Min && status <= r.Max }

// The defaults of HealthCheck's zero settings (Docker's) and the bounds
// Validate enforces.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthRetries       = 3
	DefaultHealthStartInterval = 5 * time.Second
	// MinHealthInterval bounds Interval and StartInterval from below: a
	// thousand boxes probed every 100 ms is already ten thousand probes a
	// second.
	MinHealthInterval = 100 * time.Millisecond
	// MinHealthTimeout bounds Timeout from below.
	MinHealthTimeout = 10 * time.Millisecond
	// MaxHealthExecBytes bounds the total size of an exec check's argv.
	MaxHealthExecBytes = 64 << 10
	// MaxHealthOutput bounds HealthResult.Output, in bytes.
	MaxHealthOutput = 4 << 10
	// MaxHealthLog is the number of results BoxHealth.Log keeps (Docker's).
	MaxHealthLog = 5
	// maxUnixPath is the longest socket path connect(2) takes (sun_path
	// holds 108 bytes with the terminating NUL).
	maxUnixPath = 107
)

// DefaultHTTPStatus is the range an HTTP check accepts when HTTPStatus is
// nil: 2xx and 3xx.
var DefaultHTTPStatus = HTTPStatusRange{Min: 200, Max: 399}

// HealthKind names the kind of probe a HealthCheck runs.
type HealthKind string

// The probe kinds.
const (
	HealthExec HealthKind = "exec"
	HealthTCP  HealthKind = "tcp"
	HealthHTTP HealthKind = "http"
	HealthUnix HealthKind = "unix"
)

// Kind returns the kind of probe the check runs, or "" when it sets none or
// several (which Validate refuses).
func (c *HealthCheck) Kind() HealthKind {
	var kinds []HealthKind
	if len(c.Exec) > 0 {
		kinds = append(kinds, HealthExec)
	}
	if c.TCP != "" {
		kinds = append(kinds, HealthTCP)
	}
	if c.HTTP != "" {
		kinds = append(kinds, HealthHTTP)
	}
	if c.Unix != "" {
		kinds = append(kinds, HealthUnix)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// WithDefaults returns c with its zero settings filled in.
func (c HealthCheck) WithDefaults() HealthCheck {
	if c.Interval == 0 {
		c.Interval = DefaultHealthInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultHealthTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultHealthRetries
	}
	if c.StartInterval == 0 {
		c.StartInterval = DefaultHealthStartInterval
	}
	if c.Kind() == HealthHTTP && c.HTTPStatus == nil {
		r := DefaultHTTPStatus
		c.HTTPStatus = &r
	}
	return c
}

// healthField is the name of the check in a StartBox, the prefix of every
// error Validate returns.
const healthField = "health_check"

// Validate checks the check on its own: one probe, well formed, sane
// settings. The error is ErrBadSpec naming the field. ValidateFor checks it
// against the box's spec as well.
func (c *HealthCheck) Validate() error {
	kind := c.Kind()
	if kind == "" {
		return Errorf(ErrBadSpec, "%s: want exactly one of exec, tcp, http and unix", healthField)
	}
	var err error
	switch kind {
	case HealthExec:
		err = validateHealthExec(c.Exec)
	case HealthTCP:
		err = validateHealthTCP(c.TCP)
	case HealthHTTP:
		err = validateHealthHTTP(c.HTTP)
	case HealthUnix:
		err = validateHealthUnix(c.Unix)
	}
	if err != nil {
		return err
	}
	if c.HTTPStatus != nil {
		if kind != HealthHTTP {
			return Errorf(ErrBadSpec, "%s.http_status: only an http check has one", healthField)
		}
		r := *c.HTTPStatus
		if r.Min < 100 || r.Max > 599 || r.Min > r.Max {
			return Errorf(ErrBadSpec, "%s.http_status: %d–%d is not a range within 100–599", healthField, r.Min, r.Max)
		}
	}
	for _, d := range []struct {
		name     string
		v, floor time.Duration
	}{
		{"interval", c.Interval, MinHealthInterval},
		{"start_interval", c.StartInterval, MinHealthInterval},
		{"timeout", c.Timeout, MinHealthTimeout},
		{"start_period", c.StartPeriod, 0},
	} {
		if d.v < 0 {
			return Errorf(ErrBadSpec, "%s.%s: %v must not be negative (0 means the default)", healthField, d.name, d.v)
		}
		if d.v != 0 && d.v < d.floor {
			return Errorf(ErrBadSpec, "%s.%s: %v is below the minimum of %v (0 means the default)", healthField, d.name, d.v, d.floor)
		}
	}
	if c.Retries < 0 {
		return Errorf(ErrBadSpec, "%s.retries: %d must not be negative (0 means the default, %d)", healthField, c.Retries, DefaultHealthRetries)
	}
	return nil
}

func validateHealthExec(argv []string) error {
	if argv[0] == "" {
		return Errorf(ErrBadSpec, "%s.exec[0]: the command must not be empty", healthField)
	}
	total := 0
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return Errorf(ErrBadSpec, "%s.exec[%d]: holds a NUL byte", healthField, i)
		}
		total += len(a) + 1
	}
	if total > MaxHealthExecBytes {
		return Errorf(ErrBadSpec, "%s.exec: %d bytes of arguments, more than %d", healthField, total, MaxHealthExecBytes)
	}
	return nil
}

func validateHealthTCP(addr string) error {
	host, port, ok := splitHostPort(addr)
	if !ok || host == "" {
		return Errorf(ErrBadSpec, "%s.tcp: %q: want host:port", healthField, addr)
	}
	if !validPort(port) {
		return Errorf(ErrBadSpec, "%s.tcp: %q: the port must be a number from 1 to 65535", healthField, addr)
	}
	return nil
}

func validateHealthHTTP(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return Errorf(ErrBadSpec, "%s.http: not a URL: %v", healthField, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Errorf(ErrBadSpec, "%s.http: %q: want an http:// or https:// URL", healthField, raw)
	}
	if u.Hostname() == "" {
		return Errorf(ErrBadSpec, "%s.http: %q: the URL names no host", healthField, raw)
	}
	if u.User != nil {
		// inspect and the logs show the check; a password there would be
		// shown with it.
		return Errorf(ErrBadSpec, "%s.http: credentials in the URL are not supported (the check is shown by inspect)", healthField)
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return Errorf(ErrBadSpec, "%s.http: the port must be a number from 1 to 65535", healthField)
	}
	return nil
}

func validateHealthUnix(path string) error {
	if !filepath.IsAbs(path) || strings.IndexByte(path, 0) >= 0 {
		return Errorf(ErrBadSpec, "%s.unix: %q: want an absolute path", healthField, path)
	}
	if len(path) > maxUnixPath {
		return Errorf(ErrBadSpec, "%s.unix: the path is %d bytes, longer than a socket address holds (%d)", healthField, len(path), maxUnixPath)
	}
	return nil
}

// splitHostPort splits "host:port" or "[host]:port" (an IPv6 address in
// brackets) as net.SplitHostPort does for the addresses a check may name.
// It is written here because importing package net would link the cgo
// resolver into every binary that uses this package, the shim included,
// and make it a dynamically linked executable that pays for libc at each
// box start.
func splitHostPort(addr string) (host, port string, ok bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	host, port = addr[:i], addr[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", false
		}
		host = host[1 : len(host)-1]
		if strings.ContainsAny(host, "[]") {
			return "", "", false
		}
		return host, port, true
	}
	if strings.ContainsAny(host, ":[]") || strings.ContainsAny(port, "[]") {
		return "", "", false // an IPv6 address without brackets, or stray brackets
	}
	return host, port, true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// ValidateFor checks the check (Validate) and its place in the box's spec:
// no secret value of the spec may appear in the check, which inspect shows
// and the probe's argv carries (an exec check reaches a secret through its
// environment instead: ["/bin/sh", "-c", "curl -H \"Authorization: $TOKEN\" ..."]).
// Errors name the field and the secret, never the value.
func (c *HealthCheck) ValidateFor(spec *InstanceSpec) error {
	if err := c.Validate(); err != nil {
		return err
	}
	type secret struct{ name, value string }
	var secrets []secret
	for _, s := range spec.Secrets {
		secrets = append(secrets, secret{s.Name, s.Value.Reveal()})
	}
	if spec.NetworkConfig != nil {
		secrets = append(secrets, secret{"network_config.ca_key_pem", spec.NetworkConfig.CAKeyPEM.Reveal()})
	}
	type field struct{ name, text string }
	fields := []field{{"tcp", c.TCP}, {"http", c.HTTP}, {"unix", c.Unix}}
	for i, a := range c.Exec {
		fields = append(fields, field{"exec[" + strconv.Itoa(i) + "]", a})
	}
	for _, f := range fields {
		for _, s := range secrets {
			if s.value != "" && f.text != "" && strings.Contains(f.text, s.value) {
				return Errorf(ErrBadSpec, "%s.%s: holds the value of secret %s; an exec check reads it from its environment instead", healthField, f.name, s.name)
			}
		}
	}
	return nil
}

// ReadyCondition says when a box's start is complete.
type ReadyCondition string

// The ready conditions.
const (
	// ReadyWhenReady (the default): when the shim signals ready (the ready
	// byte, or the guest's connection to the ready socket).
	ReadyWhenReady ReadyCondition = "ready"
	// ReadyWhenHealthy: when the box's health check first passes, after
	// the shim signalled ready. It needs a health check.
	ReadyWhenHealthy ReadyCondition = "healthy"
)

// Validate checks the condition; ReadyWhenHealthy needs a check.
func (r ReadyCondition) Validate(check *HealthCheck) error {
	switch r {
	case "", ReadyWhenReady:
		return nil
	case ReadyWhenHealthy:
		if check == nil {
			return Errorf(ErrBadSpec, "ready_when: healthy needs a health_check")
		}
		return nil
	}
	return Errorf(ErrBadSpec, "ready_when: %q is not ready or healthy", string(r))
}

// HealthState is a box's health, as BoxStatus reports it.
type HealthState string

// The health states. A box without a health check has none ("").
const (
	// HealthStarting: no probe has passed yet, and the failures so far
	// have not made the box unhealthy (they may lie in the start period).
	HealthStarting HealthState = "starting"
	// HealthHealthy: the last counted probe passed.
	HealthHealthy HealthState = "healthy"
	// HealthUnhealthy: Retries consecutive probes failed after the start
	// period.
	HealthUnhealthy HealthState = "unhealthy"
)

// Valid reports whether s is one of the health states.
func (s HealthState) Valid() bool {
	return s == HealthStarting || s == HealthHealthy || s == HealthUnhealthy
}

// HealthOutcome is the outcome of one probe.
type HealthOutcome string

// The probe outcomes.
const (
	// HealthPass: the probe succeeded.
	HealthPass HealthOutcome = "pass"
	// HealthFail: the probe failed: a verdict on the box (refused, timed
	// out, non-zero exit, wrong status).
	HealthFail HealthOutcome = "fail"
	// HealthError: the supervisor could not run the probe (no file
	// descriptor, no thread, no guest process to join). Not a verdict on
	// the box: it changes neither its state nor its failing streak.
	HealthError HealthOutcome = "error"
)

// HealthResult is the result of one probe.
type HealthResult struct {
	Outcome HealthOutcome `json:"outcome"`
	Start   time.Time     `json:"start"`
	End     time.Time     `json:"end"`
	// ExitCode is an exec probe's exit status; -1 when the command did not
	// exit by itself (killed at its timeout, by a signal, or never started).
	ExitCode int `json:"exit_code,omitempty"`
	// Reason says why a probe failed or erred: "exit status 1", "timed out
	// after 1s", "connect: connection refused", "HTTP 503".
	Reason string `json:"reason,omitempty"`
	// Output is the start of an exec probe's stdout and stderr, or of an
	// HTTP check's response body: at most MaxHealthOutput bytes, with the
	// box's secrets replaced by [REDACTED].
	Output string `json:"output,omitempty"`
}

// BoxHealth is a box's health, for BoxStatus and inspect.
type BoxHealth struct {
	State HealthState `json:"state"`
	// FailingStreak counts the consecutive counted failures (those after
	// the start period); Retries of them make the box unhealthy.
	FailingStreak int `json:"failing_streak"`
	// Log holds the last MaxHealthLog results, oldest first.
	Log []HealthResult `json:"log,omitempty"`
}

// BoxHealthy: the box's health check passed after it was starting or
// unhealthy. First is true for the first pass of the generation (what
// ready_when: healthy waits for).
type BoxHealthy struct {
	EventHeader
	First bool `json:"first,omitempty"`
}

// BoxUnhealthy: Retries consecutive probes of the box failed. Last is the
// last failure.
type BoxUnhealthy struct {
	EventHeader
	FailingStreak int          `json:"failing_streak"`
	Last          HealthResult `json:"last"`
}

// Kind implementations.
func (BoxHealthy) Kind() string   { return "BoxHealthy" }
func (BoxUnhealthy) Kind() string { return "BoxUnhealthy" }
