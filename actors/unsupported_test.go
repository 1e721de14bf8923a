package actors

import (
	"errors"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestUnsupportedFieldsAreRefused: a field the engine does not honour is
// refused at Start with ErrUnsupported (which is also ErrBadSpec), naming
// the field, and nothing is left behind.
func TestUnsupportedFieldsAreRefused(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	cases := map[string]func(*messages.InstanceSpec){
		"fs_shares": func(s *messages.InstanceSpec) {
			s.FSShares = []messages.FSShare{{Tag: "data", HostPath: "/srv"}}
		},
		"block_devices": func(s *messages.InstanceSpec) {
			s.BlockDevices = []messages.BlockDevice{{BlockID: "vda", DiskPath: "/srv/disk.img"}}
		},
	}
	for field, set := range cases {
		s := spec("/bin/sleep", "300")
		set(&s)
		_, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "refused", Spec: s})
		if !errors.Is(err, messages.ErrUnsupported) || !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%s: Start = %v, want ErrUnsupported (and ErrBadSpec)", field, err)
		}
		if err != nil && !strings.Contains(err.Error(), field) {
			t.Errorf("%s: the refusal does not name the field: %v", field, err)
		}
		if box, _ := ts.sup.core.home.Box("refused"); box.Exists() {
			t.Fatalf("%s: a refused start left its directory", field)
		}
	}
}
