package declare

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

const secretValue = "s3cr3t-value-9f2"

// testEnv is the environment secrets are looked up in.
func testEnv(name string) (string, bool) {
	if name == "DB_PASSWORD" {
		return secretValue, true
	}
	return "", false
}

// parse parses src as /srv/app/boxes.yaml.
func parse(t *testing.T, src string) (*BoxesFile, error) {
	t.Helper()
	return ParseFile("/srv/app/boxes.yaml", []byte(src), Options{LookupEnv: testEnv, ReadSecretFile: func(p string) (string, error) {
		if p == "/srv/app/token.txt" {
			return "file-token-0042", nil
		}
		return "", errors.New("no such file")
	}})
}

func mustParse(t *testing.T, src string) *BoxesFile {
	t.Helper()
	f, err := parse(t, src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

const fullFile = `version: 1
boxes:
  db:
    command: [/usr/bin/postgres, -D, /var/lib/pg]
    env:
      PGDATA: /var/lib/pg
    secrets:
      PGPASSWORD: {env: DB_PASSWORD}
      TOKEN: {file: token.txt}
    restart: on-failure
    max_restarts: 3
    stop_timeout: 20s
    ready_timeout: 1m
    labels: {app: db, tier: data}
  web:
    command: [server, --port, "8080"]
    work_dir: www
    env: {PATH: /opt/bin}
    depends_on: [db]
  worker:
    command: [/bin/worker]
    depends_on:
      db: {condition: ready}
      web: {}
`

func TestParseFullFile(t *testing.T) {
	t.Parallel()
	f := mustParse(t, fullFile)
	if f.Path != "/srv/app/boxes.yaml" || len(f.ApplyID) != 20 {
		t.Fatalf("path %q apply id %q", f.Path, f.ApplyID)
	}
	var ids []string
	for _, b := range f.Declared {
		ids = append(ids, b.ID())
	}
	if got := strings.Join(ids, ","); got != "db,web,worker" {
		t.Fatalf("order %s", got)
	}
	if len(f.Waves) != 3 {
		t.Fatalf("waves %v", f.Waves)
	}
	db := f.Lookup("db")
	s := db.Start
	e := s.Spec.GuestEntrypoint
	if e.Executable != "/usr/bin/postgres" || strings.Join(e.Args, " ") != "-D /var/lib/pg" {
		t.Errorf("command %q %q", e.Executable, e.Args)
	}
	if strings.Join(e.Env, ";") != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin;PGDATA=/var/lib/pg" {
		t.Errorf("env %q", e.Env)
	}
	if e.WorkDir != "/srv/app" || !s.Spec.Detach || s.Spec.Engine != messages.EngineProcess {
		t.Errorf("work dir %q detach %v engine %q", e.WorkDir, s.Spec.Detach, s.Spec.Engine)
	}
	if s.Restart.Mode != messages.RestartOnFailure || s.Restart.MaxRestarts != 3 || s.StopTimeout != 20*time.Second || s.ReadyTimeout != time.Minute {
		t.Errorf("restart %+v stop %v ready %v", s.Restart, s.StopTimeout, s.ReadyTimeout)
	}
	if len(s.Spec.Secrets) != 2 || s.Spec.Secrets[0].Name != "PGPASSWORD" || s.Spec.Secrets[0].Value.Reveal() != secretValue ||
		s.Spec.Secrets[1].Name != "TOKEN" || s.Spec.Secrets[1].Value.Reveal() != "file-token-0042" {
		t.Errorf("secrets %+v", s.Spec.Secrets)
	}
	if db.Secrets[0].From != "env DB_PASSWORD" || db.Secrets[1].From != "file /srv/app/token.txt" {
		t.Errorf("secret sources %+v", db.Secrets)
	}
	if db.UserLabels["app"] != "db" || db.Labels(f.ApplyID)[LabelApplyID] != f.ApplyID || db.Labels(f.ApplyID)[LabelSpecDigest] != db.SpecDigest {
		t.Errorf("labels %v", db.Labels(f.ApplyID))
	}
	web := f.Lookup("web")
	if web.Start.Spec.GuestEntrypoint.WorkDir != "/srv/app/www" || strings.Join(web.Start.Spec.GuestEntrypoint.Env, ";") != "PATH=/opt/bin" {
		t.Errorf("web %+v", web.Start.Spec.GuestEntrypoint)
	}
	worker := f.Lookup("worker")
	if len(worker.DependsOn) != 2 || worker.DependsOn[0] != (Dependency{"db", ConditionReady}) || worker.DependsOn[1] != (Dependency{"web", ConditionReady}) {
		t.Errorf("worker deps %+v", worker.DependsOn)
	}
	if got := f.SecretValues(); len(got) != 2 {
		t.Errorf("SecretValues %d", len(got))
	}
}

// TestUnknownKeysAreErrorsWithTheirLine: every level of the file refuses a
// key it does not know, naming file, line and column.
func TestUnknownKeysAreErrorsWithTheirLine(t *testing.T) {
	t.Parallel()
	cases := []struct{ src, want string }{
		{"boxes:\n  web:\n    command: [a]\n    comand: [b]\n", `boxes.yaml:4:5: unknown field "comand"`},
		{"boxs:\n  web:\n    command: [a]\n", `boxes.yaml:1:1: unknown field "boxs"`},
		{"boxes:\n  web:\n    command: [a]\n    secrets:\n      X: {env: A, value: hunter22}\n", `boxes.yaml:5:19: unknown field "value"`},
		{"boxes:\n  db:\n    command: [a]\n  web:\n    command: [a]\n    depends_on:\n      db: {condition: ready, when: now}\n", `boxes.yaml:7:30: unknown field "when"`},
		{"boxes:\n  web:\n    command: [a]\n    healthcheck:\n      tcp: 127.0.0.1:80\n      every: 1s\n", `boxes.yaml:6:7: unknown field "every"`},
	}
	for _, c := range cases {
		_, err := parse(t, c.src)
		if err == nil || !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want ErrBadSpec containing %q", c.src, err, c.want)
		}
	}
}

func TestInvalidFilesAreRefusedWithTheirLine(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src, want string }{
		{"duplicate box", "boxes:\n  web:\n    command: [a]\n  web:\n    command: [b]\n", `boxes.yaml:4:3: mapping key "web" already defined`},
		{"bad duration", "boxes:\n  web:\n    command: [a]\n    stop_timeout: 10 parsecs\n", "boxes.yaml:4:19: want a non-negative duration"},
		{"number duration", "boxes:\n  web:\n    command: [a]\n    stop_timeout: 10\n", "boxes.yaml:4:19: want a duration"},
		{"no command", "boxes:\n  web:\n    env: {A: b}\n", "boxes.yaml:2:3: box web: command: must name a program"},
		{"bad id", "boxes:\n  ../x:\n    command: [a]\n", `boxes.yaml:2:3: box "../x"`},
		{"bad restart", "boxes:\n  web:\n    command: [a]\n    restart: sometimes\n", `boxes.yaml:4:5: box web: restart: "sometimes"`},
		{"max restarts 0", "boxes:\n  web:\n    command: [a]\n    max_restarts: 0\n", "boxes.yaml:4:5: box web: max_restarts: 0"},
		{"unknown dep", "boxes:\n  web:\n    command: [a]\n    depends_on: [db]\n", `boxes.yaml:4:5: box web: depends_on: no box "db" is declared`},
		{"self dep", "boxes:\n  web:\n    command: [a]\n    depends_on: [web]\n", "cannot depend on itself"},
		{"twice dep", "boxes:\n  db:\n    command: [a]\n  web:\n    command: [a]\n    depends_on: [db, db]\n", "boxes.yaml:6:17: depends_on: db is listed twice"},
		{"bad condition", "boxes:\n  db:\n    command: [a]\n  web:\n    command: [a]\n    depends_on: {db: {condition: started}}\n", `condition "started" is not ready or healthy`},
		{"cycle", "boxes:\n  a:\n    command: [x]\n    depends_on: [c]\n  b:\n    command: [x]\n    depends_on: [a]\n  c:\n    command: [x]\n    depends_on: [b]\n  d:\n    command: [x]\n    depends_on: [a]\n",
			"boxes.yaml:4:5: dependency cycle: a -> c -> b -> a (each depends on the next)"},
		{"reserved label", "boxes:\n  web:\n    command: [a]\n    labels: {boxsup.dev/apply-id: x}\n", "boxes.yaml:4:5: box web: label boxsup.dev/apply-id: the prefix boxsup.dev/ is reserved"},
		{"bad label", "boxes:\n  web:\n    command: [a]\n    labels: {app: -web}\n", `box web: invalid box spec: label app: value "-web"`},
		{"secret unset", "boxes:\n  web:\n    command: [a]\n    secrets: {X: {env: NOPE}}\n", "boxes.yaml:4:5: box web: secret X: environment variable NOPE is not set"},
		{"secret both", "boxes:\n  web:\n    command: [a]\n    secrets: {X: {env: DB_PASSWORD, file: token.txt}}\n", "give env or file, not both"},
		{"secret none", "boxes:\n  web:\n    command: [a]\n    secrets: {X: {}}\n", "want env: VARIABLE or file: PATH"},
		{"secret file", "boxes:\n  web:\n    command: [a]\n    secrets: {X: {file: /nope}}\n", "box web: secret X: no such file"},
		{"two probes", "boxes:\n  web:\n    command: [a]\n    healthcheck: {tcp: ':80', unix: /s}\n", "want exactly one of exec, tcp, http and unix"},
		{"bad http", "boxes:\n  web:\n    command: [a]\n    healthcheck: {http: 'ftp://x'}\n", "want an http:// or https:// URL"},
		{"version", "version: 2\nboxes:\n  web:\n    command: [a]\n", "version 2 is not supported"},
		{"empty", "boxes: {}\n", "no boxes declared"},
		{"syntax", "boxes:\n  web: [\n", "boxes.yaml:2:8:"},
		{"bad env name", "boxes:\n  web:\n    command: [a]\n    env: {'A B': x}\n", "guest_entrypoint.env"},
	}
	for _, c := range cases {
		_, err := parse(t, c.src)
		if err == nil || !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse = %v, want ErrBadSpec containing %q", c.name, err, c.want)
		}
	}
}

// TestSecretValuesNeverInErrors: a secret too short to redact is refused
// naming the variable, not quoting the value.
func TestSecretValuesNeverInErrors(t *testing.T) {
	t.Parallel()
	_, err := ParseFile("/a/boxes.yaml", []byte("boxes:\n  web:\n    command: [a]\n    secrets: {X: {env: S}}\n"),
		Options{LookupEnv: func(string) (string, bool) { return "ab9", true }})
	if err == nil || strings.Contains(err.Error(), "ab9") || !strings.Contains(err.Error(), "X") {
		t.Fatalf("Parse = %v, want an error naming X without its value", err)
	}
}

// TestSecretValueOutsideItsEntryIsRefused: a plan must never show a
// secret, so a file that puts one's value in a command, env or label is
// refused, naming the field and not the value.
func TestSecretValueOutsideItsEntryIsRefused(t *testing.T) {
	t.Parallel()
	for _, where := range []string{
		"    command: [a, " + secretValue + "]\n",
		"    command: [a]\n    env: {COPY: " + secretValue + "}\n",
		"    command: [a]\n    labels: {token: " + secretValue + "}\n",
	} {
		src := "boxes:\n  web:\n" + where + "    secrets: {X: {env: DB_PASSWORD}}\n"
		_, err := parse(t, src)
		if !errors.Is(err, messages.ErrBadSpec) || strings.Contains(err.Error(), secretValue) || !strings.Contains(err.Error(), "holds the value of secret X") {
			t.Errorf("%q: Parse = %v, want ErrBadSpec naming secret X without its value", where, err)
		}
	}
}

func TestWavesFollowDependencies(t *testing.T) {
	t.Parallel()
	f := mustParse(t, `boxes:
  e: {command: [x], depends_on: [d, a]}
  d: {command: [x], depends_on: [b, c]}
  c: {command: [x], depends_on: [a]}
  b: {command: [x]}
  a: {command: [x]}
  z: {command: [x]}
`)
	var waves []string
	for _, w := range f.Waves {
		var ids []string
		for _, i := range w {
			ids = append(ids, f.Declared[i].ID())
		}
		waves = append(waves, strings.Join(ids, ","))
	}
	if got := strings.Join(waves, " | "); got != "a,b,z | c | d | e" {
		t.Fatalf("waves %s", got)
	}
}

func TestDigestsSeparateSpecFromConfig(t *testing.T) {
	t.Parallel()
	base := mustParse(t, "boxes:\n  web:\n    command: [a]\n    restart: always\n").Lookup("web")
	config := mustParse(t, "boxes:\n  web:\n    command: [a]\n    restart: on-failure\n").Lookup("web")
	spec := mustParse(t, "boxes:\n  web:\n    command: [b]\n    restart: always\n").Lookup("web")
	if base.SpecDigest != config.SpecDigest || base.ConfigDigest == config.ConfigDigest {
		t.Error("a restart change must change the config digest only")
	}
	if base.SpecDigest == spec.SpecDigest || base.ConfigDigest != spec.ConfigDigest {
		t.Error("a command change must change the spec digest only")
	}
	if len(base.SpecDigest) != 32 {
		t.Errorf("digest %q: want 32 hex digits (a valid label value)", base.SpecDigest)
	}
}

func TestLoadChecksTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "boxes.yaml")
	if err := os.WriteFile(path, []byte("boxes:\n  web:\n    command: [a]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := LoadFile(path, Options{})
	if err != nil || f.Path != path {
		t.Fatalf("Load: %v", err)
	}
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path, Options{}); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("Load of a group-writable file = %v", err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(link, Options{}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Load of a symlink = %v", err)
	}
	if _, err := LoadFile(dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load of a directory = %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("tok-123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadSecretFile(path); err != nil || v != "tok-123456" {
		t.Fatalf("ReadSecretFile = %q, %v", v, err)
	}
	if err := os.Chmod(path, 0o602); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(path); err == nil || strings.Contains(err.Error(), "tok-123456") {
		t.Fatalf("ReadSecretFile of a world-writable file = %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxSecretFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadSecretFile of a big file = %v", err)
	}
}

// TestErrorsBeforeTheSecretsAreReadNeverQuoteThem (found by a trial: a
// secret's value pasted into restart or stop_timeout was quoted by the
// error, and supervise logged it at error on SIGHUP).
func TestErrorsBeforeTheSecretsAreReadNeverQuoteThem(t *testing.T) {
	t.Parallel()
	for _, field := range []string{
		"    restart: " + secretValue + "\n",
		"    stop_timeout: " + secretValue + "\n",
		"    " + secretValue + ": 1\n",
	} {
		src := "boxes:\n  web:\n    command: [a]\n" + field + "    secrets: {X: {env: DB_PASSWORD}}\n"
		_, err := parse(t, src)
		if err == nil || !errors.Is(err, messages.ErrBadSpec) || strings.Contains(err.Error(), secretValue) {
			t.Errorf("%q: Parse = %v; want ErrBadSpec without the secret's value", field, err)
		}
	}
}
