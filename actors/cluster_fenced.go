package actors

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/layout"
)

// fencedFileName is the record, in the home, of the boxes this member
// fenced: stopped because it may have lost its etcd lease, and left for
// another member to take over. It outlives the supervisor, so that a
// restarted one neither reclaims their ownership records nor lets anyone
// start them here again.
const fencedFileName = "cluster-fenced.json"

// fencedBox is one fenced box: the lease its record was held under, and
// when it was fenced (for people).
type fencedBox struct {
	Lease ownership.LeaseID `json:"lease"`
	At    time.Time         `json:"at"`
}

type fencedRecord struct {
	Boxes map[string]fencedBox `json:"boxes"`
}

// fencedSet is the fenced boxes, in memory and in the home. Its methods
// may be called from any goroutine; those that change it write the file
// before they return, under the lock, so the file never goes back in time.
type fencedSet struct {
	path string
	mu   sync.Mutex
	set  map[string]fencedBox
}

// loadFenced reads the home's record (none is an empty set). A damaged
// record is an error: forgetting a fence could start a box twice.
func loadFenced(home *layout.Home) (*fencedSet, error) {
	f := &fencedSet{path: filepath.Join(home.Root, fencedFileName), set: map[string]fencedBox{}}
	var rec fencedRecord
	err := layout.ReadJSON(f.path, &rec)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		for id, b := range rec.Boxes {
			if layout.ValidateID(id) == nil {
				f.set[id] = b
			}
		}
	}
	return f, nil
}

// has reports whether id was fenced.
func (f *fencedSet) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.set[id]
	return ok
}

// ids lists the fenced boxes, sorted.
func (f *fencedSet) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.set))
	for id := range f.set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// add records boxes as fenced under lease, durably.
func (f *fencedSet) add(lease ownership.LeaseID, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	next := make(map[string]fencedBox, len(f.set)+len(ids))
	for id, b := range f.set {
		next[id] = b
	}
	now := time.Now().UTC()
	for _, id := range ids {
		next[id] = fencedBox{Lease: lease, At: now}
	}
	if err := layout.WriteJSON(f.path, fencedRecord{Boxes: next}, 0o600); err != nil {
		return err
	}
	f.set = next
	return nil
}

// remove forgets boxes (removed here, or taken over elsewhere).
func (f *fencedSet) remove(ids ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := make(map[string]fencedBox, len(f.set))
	changed := false
	for id, b := range f.set {
		next[id] = b
	}
	for _, id := range ids {
		if _, ok := next[id]; ok {
			delete(next, id)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := layout.WriteJSON(f.path, fencedRecord{Boxes: next}, 0o600); err != nil {
		return err
	}
	f.set = next
	return nil
}
