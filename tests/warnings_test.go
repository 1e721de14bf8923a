package tests

import (
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// warnings records the warnings a supervisor logs.
type warnings struct {
	mu      sync.Mutex
	entries []*logrus.Entry
}

func (w *warnings) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel} }

func (w *warnings) Fire(e *logrus.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The entry is reused once Fire returns: keep a copy.
	w.entries = append(w.entries, &logrus.Entry{Message: e.Message, Data: maps.Clone(e.Data)})
	return nil
}

// about returns the first warning whose box_id is id, or nil.
func (w *warnings) about(id string) *logrus.Entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.entries {
		if e.Data["box_id"] == id {
			return e
		}
	}
	return nil
}

// mention reports whether a warning's message or fields mention s.
func (w *warnings) mention(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.entries {
		if strings.Contains(e.Message, s) || strings.Contains(fmt.Sprint(e.Data), s) {
			return true
		}
	}
	return false
}

// reset forgets the warnings seen so far.
func (w *warnings) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.entries = nil
}

// all returns the warnings' messages.
func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.entries {
		out = append(out, e.Message)
	}
	return out
}
