package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/messages"
)

// securityFlags are boxsup run's flags for the guest's identity, limits and
// isolation, named as docker run names them. Each maps to one spec field
// (docs/SECURITY.md); a value boxsup cannot honour is refused, never
// dropped.
type securityFlags struct {
	user        string
	groupAdd    []string
	ulimits     []string
	network     string
	pid         string
	securityOpt []string
	envClear    bool
}

func (s *securityFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.user, "user", "", "run the guest as UID[:GID] (numbers or names; without GID, the user's primary group)")
	f.StringArrayVar(&s.groupAdd, "group-add", nil, "add a supplementary group (GID or name) to the guest; repeatable")
	f.StringArrayVar(&s.ulimits, "ulimit", nil, "limit the guest: nofile=N, fsize=BYTES or nproc=N (soft and hard alike); repeatable")
	f.StringVar(&s.network, "network", "", "none: the guest gets a network namespace of its own with loopback only")
	f.StringVar(&s.pid, "pid", "", "private: the guest is PID 1 of a PID namespace of its own")
	f.StringArrayVar(&s.securityOpt, "security-opt", nil, "seccomp=default|unconfined, or no-new-privileges; repeatable")
	f.BoolVar(&s.envClear, "env-clear", false, "pass the guest only -e and --secret-env (and a minimal PATH): not boxsup's PATH and HOME")
}

// apply sets the spec's fields from the flags.
func (s *securityFlags) apply(spec *messages.InstanceSpec) error {
	sec := &spec.Security
	if s.user != "" {
		uid, gid, err := parseUser(s.user)
		if err != nil {
			return err
		}
		sec.UID, sec.GID = uid, gid
	}
	for _, g := range s.groupAdd {
		gid, err := parseGroup(g)
		if err != nil {
			return messages.Errorf(messages.ErrBadSpec, "--group-add %q: %v", g, err)
		}
		sec.Groups = append(sec.Groups, gid)
	}
	seen := map[string]bool{}
	for _, u := range s.ulimits {
		name, value, err := parseUlimit(u)
		if err != nil {
			return err
		}
		if seen[name] {
			return messages.Errorf(messages.ErrBadSpec, "--ulimit %s: given twice", name)
		}
		seen[name] = true
		switch name {
		case "nofile":
			sec.MaxOpenFiles = value
		case "fsize":
			sec.MaxFileSize = value
		case "nproc":
			sec.MaxProcesses = value
		}
	}
	switch s.network {
	case "", "host":
	case "none":
		spec.DisableNetwork = true
	default:
		return messages.Errorf(messages.ErrBadSpec, "--network %q: want none (or host, the default)", s.network)
	}
	switch s.pid {
	case "", "host":
	case "private":
		sec.NewPIDNS = true
	default:
		return messages.Errorf(messages.ErrBadSpec, "--pid %q: want private (or host, the default)", s.pid)
	}
	for _, opt := range s.securityOpt {
		if err := applySecurityOpt(sec, opt); err != nil {
			return err
		}
		if explicitlyOff(opt, "no-new-privileges") && (sec.UID != 0 || sec.GID != 0) {
			// The engine always sets no_new_privs on a guest given an
			// identity (docs/SECURITY.md): "false" could not be honoured.
			return messages.Errorf(messages.ErrBadSpec,
				"--security-opt %q: a guest given --user always runs with no_new_privs; drop the option", opt)
		}
	}
	sec.SanitizeEnv = s.envClear
	return nil
}

// explicitlyOff reports whether opt sets key to false (key=false, key:0).
func explicitlyOff(opt, key string) bool {
	k, value, ok := strings.Cut(strings.Replace(opt, ":", "=", 1), "=")
	if !ok || k != key {
		return false
	}
	v, err := strconv.ParseBool(value)
	return err == nil && !v
}

// applySecurityOpt applies one --security-opt value.
func applySecurityOpt(sec *messages.SecurityOptions, opt string) error {
	// Docker accepts key=value and the older key:value.
	key, value, _ := strings.Cut(strings.Replace(opt, ":", "=", 1), "=")
	switch key {
	case "seccomp":
		switch value {
		case "default":
			sec.Seccomp = true
		case "unconfined":
			sec.Seccomp = false
		default:
			return messages.Errorf(messages.ErrBadSpec, "--security-opt seccomp=%s: want default or unconfined (custom profiles are not supported)", value)
		}
	case "no-new-privileges":
		v, err := strconv.ParseBool(value)
		if value == "" {
			v, err = true, nil
		}
		if err != nil {
			return messages.Errorf(messages.ErrBadSpec, "--security-opt %q: want no-new-privileges[=true|false]", opt)
		}
		sec.NoNewPrivs = v
	default:
		return messages.Errorf(messages.ErrBadSpec, "--security-opt %q: not supported (seccomp=default|unconfined, no-new-privileges)", opt)
	}
	return nil
}

// parseUlimit parses NAME=N or NAME=SOFT:HARD with SOFT equal to HARD: the
// engine sets both limits to one value.
func parseUlimit(s string) (string, uint64, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, messages.Errorf(messages.ErrBadSpec, "--ulimit %q: want NAME=VALUE", s)
	}
	if name != "nofile" && name != "fsize" && name != "nproc" {
		return "", 0, messages.Errorf(messages.ErrBadSpec, "--ulimit %s: not supported (nofile, fsize, nproc)", name)
	}
	soft, hard, pair := strings.Cut(value, ":")
	n, err := strconv.ParseUint(soft, 10, 64)
	if err == nil && pair {
		var h uint64
		h, err = strconv.ParseUint(hard, 10, 64)
		if err == nil && h != n {
			return "", 0, messages.Errorf(messages.ErrBadSpec, "--ulimit %s=%s: soft and hard limits must be equal (the engine sets both)", name, value)
		}
	}
	if err != nil || n == 0 {
		return "", 0, messages.Errorf(messages.ErrBadSpec, "--ulimit %s=%s: want a positive whole number", name, value)
	}
	return name, n, nil
}

// parseUser resolves --user UID[:GID]. Without a group, the user's primary
// group from the passwd database; a uid that has no entry there needs its
// group given, rather than a guess.
func parseUser(s string) (uid, gid uint32, err error) {
	userPart, groupPart, hasGroup := strings.Cut(s, ":")
	bad := func(format string, args ...any) error {
		return messages.Errorf(messages.ErrBadSpec, "--user %q: %s", s, fmt.Sprintf(format, args...))
	}
	var entry *user.User
	if n, perr := parseID(userPart); perr == nil {
		uid = n
		entry, _ = user.LookupId(userPart)
	} else {
		if entry, err = user.Lookup(userPart); err != nil {
			return 0, 0, bad("no such user")
		}
		n, perr := parseID(entry.Uid)
		if perr != nil {
			return 0, 0, bad("user has uid %q", entry.Uid)
		}
		uid = n
	}
	switch {
	case hasGroup:
		if gid, err = parseGroup(groupPart); err != nil {
			return 0, 0, bad("%v", err)
		}
	case entry != nil:
		if gid, err = parseID(entry.Gid); err != nil {
			return 0, 0, bad("user has gid %q", entry.Gid)
		}
	default:
		return 0, 0, bad("no passwd entry for uid %d to take a group from; give one: --user %d:GID", uid, uid)
	}
	// uid and gid 0 in a spec mean "keep the supervisor's identity": for a
	// supervisor that is not root, root cannot be asked for.
	if (uid == 0 && os.Geteuid() != 0) || (gid == 0 && os.Getegid() != 0) {
		return 0, 0, bad("boxsup does not run as root, so a guest cannot be made root")
	}
	return uid, gid, nil
}

// parseGroup resolves a GID or a group name.
func parseGroup(s string) (uint32, error) {
	if n, err := parseID(s); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("no such group %q", s)
	}
	return parseID(g.Gid)
}

// parseID parses a numeric uid or gid; (uid_t)-1 is not one.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Errorf("%q is not a numeric id", s)
	}
	return uint32(n), nil
}
