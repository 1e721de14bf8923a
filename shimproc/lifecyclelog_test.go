package shimproc

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
)

// jsonLines parses a JSON log.
func jsonLines(t *testing.T, raw string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, line)
	}
	return out
}

// lineOf returns the first line with message msg.
func lineOf(lines []map[string]any, msg string) (map[string]any, bool) {
	for _, l := range lines {
		if l["msg"] == msg {
			return l, true
		}
	}
	return nil, false
}

// TestLifecycleLogLines: a start logs, at info, the box starting (engine and
// transport), its runner spawned (with the spawn's duration) and ready;
// at warn, a stale socket removed before the start. No line holds a secret.
// The supervisor's level reaches the shim as BOXSUP_LOG, and the shim's own
// lifecycle lines in shim.log follow it: info lines at info, none at warn,
// debug lines only at debug.
func TestLifecycleLogLines(t *testing.T) {
	for _, level := range []logrus.Level{logrus.InfoLevel, logrus.WarnLevel, logrus.DebugLevel} {
		t.Run(level.String(), func(t *testing.T) {
			box := newBox(t, "loud")
			dir, err := layout.SocketDir(box.SocketsDir(), "ready.sock")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = layout.RemoveSocketDir(box.SocketsDir()) })
			transport, ready := filepath.Join(dir, "ctl.sock"), filepath.Join(dir, "ready.sock")
			staleSocket(t, ready)

			out := &testutil.SyncBuffer{}
			logger, err := logging.New(logging.Options{Level: level.String(), Format: "json", Out: out})
			if err != nil {
				t.Fatal(err)
			}
			spec := secretSpec(os.Args[0], "-test.run=^$")
			spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, helperRoleEnv+"="+roleConnectReady)
			spec.Transport, spec.ReadyTransport = transport, ready
			h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupOff, Logger: logger})

			if env := procFile(t, h.PID(), "environ"); !strings.Contains(env, "\x00"+LogLevelEnv+"="+level.String()+"\x00") {
				t.Errorf("the shim's environment does not carry %s=%s", LogLevelEnv, level)
			}
			raw := out.String()
			assertNoSecret(t, "the supervisor's log", raw)
			lines := jsonLines(t, raw)
			want := map[string]string{"box starting": "info", "box runner spawned": "info", "box ready": "info",
				"removed a stale socket before the start": "warning"}
			for msg, lv := range want {
				line, ok := lineOf(lines, msg)
				if enabled := level >= map[string]logrus.Level{"info": logrus.InfoLevel, "warning": logrus.WarnLevel}[lv]; !enabled {
					if ok {
						t.Errorf("%q logged at level %s", msg, level)
					}
					continue
				}
				if !ok || line["level"] != lv {
					t.Errorf("%q: %v (found %v); want it at %s\n%s", msg, line, ok, lv, raw)
					continue
				}
				switch msg {
				case "box starting":
					if line["engine"] != "process" || line["transport"] != transport || line["box_id"] != box.ID {
						t.Errorf("box starting lacks the engine, transport or box: %v", line)
					}
				case "box runner spawned", "box ready":
					if _, ok := line["took"]; !ok {
						t.Errorf("%q lacks its duration: %v", msg, line)
					}
				case "removed a stale socket before the start":
					if line["socket"] != ready {
						t.Errorf("the stale socket line names %v, want %s", line["socket"], ready)
					}
				}
			}

			// The shim writes its lines before its ready byte: they are
			// in shim.log once Spawn has returned.
			rawShimLog, err := os.ReadFile(box.ShimLogPath())
			if err != nil {
				t.Fatal(err)
			}
			shimLog := string(rawShimLog)
			assertNoSecret(t, "shim.log", shimLog)
			infoLines := []string{" info: box " + box.ID + ": shim starting (engine process", " info: box " + box.ID + ": guest started, pid ",
				" info: guest connected to the ready socket: ready"}
			for _, l := range infoLines {
				if got := strings.Contains(shimLog, l); got != (level >= logrus.InfoLevel) {
					t.Errorf("shim.log at %s: %q present = %v\n%s", level, l, got, shimLog)
				}
			}
			if got := strings.Contains(shimLog, " debug: box "+box.ID+": spec read"); got != (level >= logrus.DebugLevel) {
				t.Errorf("shim.log at %s: the debug line present = %v\n%s", level, got, shimLog)
			}
		})
	}
}
