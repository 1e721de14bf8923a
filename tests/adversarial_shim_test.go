package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAdversaryPlantedShimGetsNoSecret: a boxsup-shim that another user
// controls must not be run with a box's spec, which carries its secrets on
// the shim's stdin. As first reproduced: boxsup copied into a directory of
// its own, and beside it a boxsup-shim that nobody owns, mode 0777, which
// copies its stdin to a file; or, with no shim beside boxsup, one in a PATH
// directory that nobody owns. `TOK=... boxsup run -d --secret-env TOK`
// must refuse it, naming it, and nothing may be copied.
func TestAdversaryPlantedShimGetsNoSecret(t *testing.T) {
	const secret = "adversary-shim-secret-3b7d"
	for _, variant := range []string{"beside boxsup", "on a PATH entry of nobody's"} {
		t.Run(variant, func(t *testing.T) {
			a := newAdversary(t)
			stolen := filepath.Join(a.base, "stolen")
			script := "#!/bin/sh\ncat > " + stolen + "\n"
			bin := filepath.Join(a.base, "bin") // root's, 0755
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := copyFile(filepath.Join(a.bin, "boxsup"), filepath.Join(bin, "boxsup"), 0o755); err != nil {
				t.Fatal(err)
			}
			env := []string{"TOK=" + secret}
			var planted string
			switch variant {
			case "beside boxsup":
				planted = filepath.Join(bin, "boxsup-shim")
				if err := os.WriteFile(planted, []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(planted, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(planted, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			default:
				dir := filepath.Join(a.base, "nobody-bin")
				planted = filepath.Join(dir, "boxsup-shim")
				a.nobodySh("mkdir -m 0755 " + dir + " && printf '%s' '" + script + "' > " + planted + " && chmod 0755 " + planted)
				env = append(env, "PATH="+dir+":/usr/bin:/bin")
			}
			a.bin = bin // run the copy, with nothing but the planted shim to find
			r := a.boxsup(30*time.Second, env, "run", "-d", "--name", "v", "--secret-env", "TOK", "--", "/bin/sleep", "10")
			if b, err := os.ReadFile(stolen); err == nil {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("the planted shim captured the secret: %q", b)
				} else {
					t.Errorf("the planted shim ran and read %q", b)
				}
			}
			if r.code == 0 || !strings.Contains(r.stderr, "refusing the shim "+planted) {
				t.Errorf("want a failure that names the refused shim %s, got %s", planted, r)
			}
		})
	}
}
