package layout

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// TestLockOnAFullDisk: the home lock is taken on a full disk, without the
// holder's pid (stopping boxes, which frees space, must not need space); a
// contender is still refused, told the holder is unknown.
func TestLockOnAFullDisk(t *testing.T) {
	disk := testutil.MountSmallDisk(t, "1m")
	home, err := Open(filepath.Join(disk.Dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := home.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	disk.Fill()
	defer disk.Free()
	l, err := home.Lock()
	if err != nil {
		t.Fatalf("Lock on a full disk: %v", err)
	}
	defer l.Release()
	if _, err := home.Lock(); !errors.Is(err, messages.ErrHomeLocked) || !strings.Contains(err.Error(), "pid unknown") {
		t.Fatalf("second Lock on a full disk = %v; want ErrHomeLocked, holder unknown", err)
	}
}
