package messages

import "time"

// RestartMode says when a box whose shim exited is started again.
type RestartMode string

// Restart modes, as in docker and systemd.
const (
	RestartNo        RestartMode = "no"         // never
	RestartOnFailure RestartMode = "on-failure" // after a non-zero exit or a signal
	RestartAlways    RestartMode = "always"     // after any exit that no Stop asked for
	// RestartOnUnhealthy is on-failure, and also stops a box whose health
	// check turns unhealthy (as a Stop would: SIGTERM, then SIGKILL after
	// its stop timeout) and starts it again, whatever its exit. It needs
	// a HealthCheck. Restarts count against the same limit.
	RestartOnUnhealthy RestartMode = "on-unhealthy"
)

// RestartPolicy is a box's restart policy: the mode, an OTP-style intensity
// limit (at most MaxRestarts within Window, else the box fails), and a capped
// exponential backoff with full jitter that resets after StableAfter of uptime.
// Zero fields take the defaults of DefaultRestartPolicy.
type RestartPolicy struct {
	Mode           RestartMode   `json:"mode"`
	MaxRestarts    int           `json:"max_restarts"`    // within Window; 0 = default, <0 = unlimited
	Window         time.Duration `json:"window"`          // intensity period
	InitialBackoff time.Duration `json:"initial_backoff"` // first delay ceiling; negative = restart at once
	MaxBackoff     time.Duration `json:"max_backoff"`     // delay cap
	StableAfter    time.Duration `json:"stable_after"`    // uptime that resets the backoff
	NoJitter       bool          `json:"no_jitter,omitempty"`
}

// DefaultRestartPolicy is used for zero fields: no restart; when enabled, 5
// restarts in 60 s, backoff 100 ms doubling to 30 s, reset after 10 s up.
func DefaultRestartPolicy() RestartPolicy {
	return RestartPolicy{
		Mode:           RestartNo,
		MaxRestarts:    5,
		Window:         60 * time.Second,
		InitialBackoff: 100 * time.Millisecond,
		MaxBackoff:     30 * time.Second,
		StableAfter:    10 * time.Second,
	}
}

// WithDefaults fills zero fields from DefaultRestartPolicy.
func (p RestartPolicy) WithDefaults() RestartPolicy {
	d := DefaultRestartPolicy()
	if p.Mode == "" {
		p.Mode = d.Mode
	}
	if p.MaxRestarts == 0 {
		p.MaxRestarts = d.MaxRestarts
	}
	if p.Window == 0 {
		p.Window = d.Window
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = d.InitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = d.MaxBackoff
	}
	if p.StableAfter == 0 {
		p.StableAfter = d.StableAfter
	}
	return p
}

// Validate returns ErrBadSpec for an unknown mode or negative durations.
func (p RestartPolicy) Validate() error {
	switch p.Mode {
	case "", RestartNo, RestartOnFailure, RestartAlways, RestartOnUnhealthy:
	default:
		return Errorf(ErrBadSpec, "restart.mode: %q is not no, on-failure, always or on-unhealthy", p.Mode)
	}
	if p.Window < 0 || p.MaxBackoff < 0 || p.StableAfter < 0 {
		return Errorf(ErrBadSpec, "restart: window, max_backoff and stable_after must not be negative")
	}
	if p.MaxBackoff > 0 && p.InitialBackoff > p.MaxBackoff {
		return Errorf(ErrBadSpec, "restart: initial_backoff %v exceeds max_backoff %v", p.InitialBackoff, p.MaxBackoff)
	}
	return nil
}

// ShouldRestart reports whether an exit with this record warrants a restart
// under the mode (the intensity limit is checked separately).
func (p RestartPolicy) ShouldRestart(exit ExitRecord) bool {
	switch p.Mode {
	case RestartAlways:
		return true
	case RestartOnFailure, RestartOnUnhealthy:
		return !exit.Success()
	}
	return false
}

// ParseRestartMode accepts "no", "on-failure", "always" and "on-unhealthy".
func ParseRestartMode(s string) (RestartMode, error) {
	switch m := RestartMode(s); m {
	case RestartNo, RestartOnFailure, RestartAlways, RestartOnUnhealthy:
		return m, nil
	}
	return "", Errorf(ErrBadSpec, "restart mode %q is not no, on-failure, always or on-unhealthy", s)
}

// Default timeouts.
const (
	DefaultStopTimeout  = 10 * time.Second
	DefaultReadyTimeout = 30 * time.Second
)
