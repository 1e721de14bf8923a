package shimproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

const (
	secretSentinel = "s3ntinel-SECRET-value-4711"
	pemBody        = "c2VjcmV0LWtleS1ib2R5LXNlbnRpbmVsLTQ3MTE="
	pemSentinel    = "-----BEGIN PRIVATE KEY-----\n" + pemBody + "\n-----END PRIVATE KEY-----\n"
	secretVarName  = "BOXSUP_TEST_TOKEN"
)

// secretSpec is a spec carrying both sentinels. The PEM travels as a
// secret variable: the process engine refuses network_config, the field
// that carries a VMM's CA key (unit_test.go covers that key's filtering).
func secretSpec(argv ...string) messages.InstanceSpec {
	spec := guestSpec(argv...)
	spec.Secrets = []messages.SecretVar{
		{Name: secretVarName, Value: messages.NewSecret(secretSentinel)},
		{Name: "BOXSUP_TEST_CA_KEY", Value: messages.NewSecret(pemSentinel)},
	}
	return spec
}

// assertNoSecret fails when text holds a sentinel.
func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range []string{secretSentinel, pemBody} {
		if strings.Contains(text, s) {
			t.Errorf("%s holds a secret:\n%s", where, text)
		}
	}
}

func procFile(t *testing.T, pid int, name string) string {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestSecretsStayOutOfArgvEnvErrorsAndLogs(t *testing.T) {
	// The supervisor's own environment carries the secret, under its name
	// and inside another variable: the filter must drop both.
	t.Setenv(secretVarName, secretSentinel)
	t.Setenv("BOXSUP_TEST_CARRIER", "prefix-"+secretSentinel+"-suffix")
	t.Setenv("BOXSUP_TEST_HARMLESS", "plain")
	logs := &testutil.SyncBuffer{}
	log, err := logging.New(logging.Options{Level: "trace", Format: "json", Out: logs})
	if err != nil {
		t.Fatal(err)
	}

	box := newBox(t, "secret")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: secretSpec("/bin/sleep", "30"), Cgroup: CgroupOff, Logger: log})
	assertNoSecret(t, "the shim's argv", procFile(t, h.PID(), "cmdline"))
	environ := procFile(t, h.PID(), "environ")
	assertNoSecret(t, "the shim's environment", environ)
	for _, name := range []string{secretVarName + "=", "BOXSUP_TEST_CARRIER="} {
		if strings.Contains(environ, name) {
			t.Errorf("the shim's environment still has %s", name)
		}
	}
	if !strings.Contains(environ, "BOXSUP_TEST_HARMLESS=plain") {
		t.Error("the shim's environment lost an ordinary variable")
	}
	// Positive control: the secret does reach its consumer, the guest. (Ready
	// comes once the guest's exec is under way; /proc shows its environment
	// a moment later, when the kernel has set up the new image.)
	waitFor(t, 10*time.Second, "the guest's environment to hold its secret", func() bool {
		tree := descendants(h.PID())
		if len(tree) != 2 {
			return false
		}
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(tree[1]) + "/environ")
		return strings.Contains(string(env), secretVarName+"="+secretSentinel)
	})
	if err := h.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExited(t, h, 10*time.Second)

	// A spec whose guest path holds the secret is refused before any
	// process exists, naming the field and not the value (a path is shown
	// in errors, inspect and the shim's log).
	bad := newBox(t, "secretfail")
	_, err = Spawn(context.Background(), SpawnRequest{
		Box: bad, Binary: shimBinary, Spec: secretSpec("/nonexistent/" + secretSentinel), Cgroup: CgroupOff, Logger: log,
	})
	if !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), "guest_entrypoint.executable: holds the value of secret") {
		t.Fatalf("Spawn = %v, want ErrBadSpec naming the field", err)
	}
	assertNoSecret(t, "the refusal", err.Error())
	// A failure of a secret-bearing spec: the guest cannot be run.
	missing := newBox(t, "secretmissing")
	_, err = Spawn(context.Background(), SpawnRequest{
		Box: missing, Binary: shimBinary, Spec: secretSpec("/nonexistent/prog"), Cgroup: CgroupOff, Logger: log,
	})
	if !errors.Is(err, messages.ErrStartFailed) {
		t.Fatalf("Spawn = %v, want ErrStartFailed", err)
	}
	assertNoSecret(t, "the start error", err.Error())

	// A ready timeout with a secret-bearing spec.
	slow := newBox(t, "secretslow")
	dir, err := layout.SocketDir(slow.SocketsDir(), "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = layout.RemoveSocketDir(slow.SocketsDir()) })
	spec := secretSpec("/bin/sleep", "30")
	spec.ReadyTransport = filepath.Join(dir, "ready.sock")
	_, err = Spawn(context.Background(), SpawnRequest{
		Box: slow, Binary: shimBinary, Spec: spec, ReadyTimeout: 200 * time.Millisecond, Cgroup: CgroupOff, Logger: log,
	})
	if !errors.Is(err, messages.ErrReadyTimeout) {
		t.Fatalf("Spawn = %v, want ErrReadyTimeout", err)
	}
	assertNoSecret(t, "the timeout error", err.Error())

	out := logs.String()
	assertNoSecret(t, "the trace log", out)
	if !strings.Contains(out, `"json_bytes"`) || !strings.Contains(out, `"box_id":"`+box.ID+`"`) {
		t.Errorf("trace log lacks the redacted config trace:\n%s", out)
	}
	if !strings.Contains(out, "box runner spawned") {
		t.Errorf("debug log lacks the spawn line:\n%s", out)
	}
	for _, b := range []layout.Box{box, slow, missing} {
		raw, _ := os.ReadFile(b.ShimLogPath())
		assertNoSecret(t, b.ID+"/shim.log", string(raw))
	}
}
