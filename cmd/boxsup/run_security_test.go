package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// Each confinement flag sets its spec field; a value that cannot be
// honoured is refused as a bad spec, never dropped.
func TestSecurityFlagsMapToTheSpec(t *testing.T) {
	t.Parallel()
	ok := []struct {
		flags securityFlags
		want  func(*messages.InstanceSpec)
	}{
		{securityFlags{user: "65534:65534"}, func(s *messages.InstanceSpec) { s.Security.UID, s.Security.GID = 65534, 65534 }},
		{securityFlags{groupAdd: []string{"100", "4242"}}, func(s *messages.InstanceSpec) { s.Security.Groups = []uint32{100, 4242} }},
		{securityFlags{ulimits: []string{"nofile=64", "fsize=1048576", "nproc=50:50"}}, func(s *messages.InstanceSpec) {
			s.Security.MaxOpenFiles, s.Security.MaxFileSize, s.Security.MaxProcesses = 64, 1<<20, 50
		}},
		{securityFlags{network: "none"}, func(s *messages.InstanceSpec) { s.DisableNetwork = true }},
		{securityFlags{network: "host", pid: "host"}, func(*messages.InstanceSpec) {}},
		{securityFlags{pid: "private"}, func(s *messages.InstanceSpec) { s.Security.NewPIDNS = true }},
		{securityFlags{securityOpt: []string{"seccomp=default", "no-new-privileges"}}, func(s *messages.InstanceSpec) {
			s.Security.Seccomp, s.Security.NoNewPrivs = true, true
		}},
		{securityFlags{securityOpt: []string{"seccomp=default", "seccomp=unconfined", "no-new-privileges:false"}}, func(*messages.InstanceSpec) {}},
		{securityFlags{envClear: true}, func(s *messages.InstanceSpec) { s.Security.SanitizeEnv = true }},
	}
	for _, c := range ok {
		var got, want messages.InstanceSpec
		if err := c.flags.apply(&got); err != nil {
			t.Errorf("%+v: %v", c.flags, err)
			continue
		}
		c.want(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: spec %+v, want %+v", c.flags, got, want)
		}
	}
	bad := []securityFlags{
		{user: "65534:"},
		{user: "no-such-user-xyz"},
		{user: "65534:no-such-group-xyz"},
		{user: "4294967295:1"},
		{groupAdd: []string{"no-such-group-xyz"}},
		{ulimits: []string{"core=1"}},
		{ulimits: []string{"nofile"}},
		{ulimits: []string{"nofile=0"}},
		{ulimits: []string{"nofile=-1"}},
		{ulimits: []string{"nofile=64:128"}},
		{ulimits: []string{"nofile=64", "nofile=65"}},
		{network: "bridge"},
		{pid: "container:x"},
		{securityOpt: []string{"seccomp=/etc/profile.json"}},
		{securityOpt: []string{"apparmor=unconfined"}},
		{securityOpt: []string{"no-new-privileges=maybe"}},
		// Always on for a guest given an identity: "false" cannot be honoured.
		{user: "65534:65534", securityOpt: []string{"no-new-privileges=false"}},
		{user: "65534:65534", securityOpt: []string{"no-new-privileges:0"}},
	}
	for _, f := range bad {
		var spec messages.InstanceSpec
		if err := f.apply(&spec); !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%+v: %v, want ErrBadSpec", f, err)
		}
	}
}

// --user NAME takes the uid and primary group from the passwd database; a
// numeric uid without an entry needs its group given.
func TestUserFlagLooksUpNames(t *testing.T) {
	t.Parallel()
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no passwd entry for nobody")
	}
	var spec messages.InstanceSpec
	if err := (&securityFlags{user: "nobody"}).apply(&spec); err != nil {
		t.Fatal(err)
	}
	if got := [2]string{strconv.Itoa(int(spec.Security.UID)), strconv.Itoa(int(spec.Security.GID))}; got != [2]string{nobody.Uid, nobody.Gid} {
		t.Errorf("--user nobody: uid:gid %v, want %s:%s", got, nobody.Uid, nobody.Gid)
	}
	if _, err := user.LookupId("4242424"); err == nil {
		t.Skip("uid 4242424 has a passwd entry here")
	}
	if err := (&securityFlags{user: "4242424"}).apply(&spec); !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), "4242424:GID") {
		t.Errorf("--user without an entry or a group: %v", err)
	}
}

// A foreground run with the confinement flags: the guest reports the
// identity, limits and filter it got.
func TestRunConfinedGuest(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can run a guest as another user")
	}
	e := newEnv(t)
	r := e.boxsup("run", "--rm", "--user", "65534:65534", "--group-add", "100", "--ulimit", "nofile=64",
		"--security-opt", "seccomp=default", "--env-clear", "-e", markEnv, "-w", "/", "--",
		"/bin/sh", "-c", `id -u; id -G; ulimit -n; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; echo "PATH=$PATH"`)
	if r.code != 0 {
		t.Fatalf("confined run: %s", r)
	}
	want := "65534\n65534 100\n64\nNoNewPrivs:\t1\nSeccomp:\t2\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	if r.stdout != want {
		t.Errorf("the guest reported\n%q\nwant\n%q", r.stdout, want)
	}
}

// boxsup info lists every optional field for the process engine, and says
// so when the shim predates --capabilities.
func TestInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var infos []engineInfo
	r := e.must("info", "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("info --format json: %v\n%s", err, r)
	}
	honoured := map[string]bool{}
	for _, f := range infos[0].Fields {
		honoured[f.Field] = f.Honoured
	}
	if infos[0].Engine != "process" || len(honoured) != len(messages.OptionalFields()) ||
		!honoured[messages.FieldUID] || honoured[messages.FieldFSShares] {
		t.Errorf("info: %+v", infos[0])
	}
	if r := e.must("info"); !strings.Contains(r.stdout, "security.seccomp") || !strings.Contains(r.stdout, "via the box cgroup (memory)") {
		t.Errorf("info table:\n%s", r.stdout)
	}

	old := filepath.Join(t.TempDir(), "old-shim")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho usage >&2\nexit 125\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.must("--shim", old, "info"); !strings.Contains(r.stdout, "predates --capabilities") {
		t.Errorf("info on an old shim:\n%s", r.stdout)
	}
}
