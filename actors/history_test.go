package actors

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestSubscribeSinceJoinsReplayAndLiveWithoutGap: a subscription whose
// Since reaches back to before the supervisor started, taken while boxes
// are being started, receives first a marker saying the history begins at
// the start, then every event numbered 1, 2, 3... with no gap and no
// duplicate, wherever the subscription fell among the publications.
func TestSubscribeSinceJoinsReplayAndLiveWithoutGap(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-time.Hour)
	ts := newTestSup(t, func(c *Config) { c.EventHistory = 1000 })
	if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "first", Spec: spec("/bin/sleep", "300")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	startErrs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: fmt.Sprintf("more-%d", i), Spec: spec("/bin/sleep", "300")})
			startErrs <- err
		}()
	}
	var mu sync.Mutex
	var got []messages.Event
	cancel := ts.sup.Subscribe(EventFilter{Since: before}, func(ev messages.Event) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	})
	defer cancel()
	wg.Wait()
	close(startErrs)
	for err := range startErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	history := ts.sup.EventHistory(EventFilter{})
	last := history[len(history)-1].Header().Seq
	eventually(t, "the subscription to reach the last event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Header().Seq == last
	})
	mu.Lock()
	defer mu.Unlock()
	lag, ok := got[0].(messages.EventsLagged)
	if !ok || lag.Dropped != 0 || lag.At.Before(before) {
		t.Fatalf("first delivery %#v, want an EventsLagged saying the history begins at the start, none dropped", got[0])
	}
	for i, ev := range got[1:] {
		if ev.Header().Seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d, want %d: a gap or a duplicate (%s of %s)", i+1, ev.Header().Seq, i+1, ev.Kind(), ev.Box())
		}
	}
	if len(history) != len(got)-1 {
		t.Fatalf("the history holds %d events, the subscription got %d", len(history), len(got)-1)
	}
}

// TestEventHistoryIsBoundedAndSaysSo: the history keeps the latest events
// only; a Since before what it still holds is answered with a marker that
// says where the history begins and how many events left it, and a Since
// within it without one.
func TestEventHistoryIsBoundedAndSaysSo(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t, func(c *Config) { c.EventHistory = 2 })
	before := time.Now()
	for _, id := range []string{"one", "two"} {
		if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: id, Spec: spec("/bin/sleep", "300")}); err != nil {
			t.Fatal(err)
		}
	}
	all := ts.sup.EventHistory(EventFilter{Since: before})
	lag, ok := all[0].(messages.EventsLagged)
	if !ok || lag.Dropped < 2 || !lag.At.After(before) {
		t.Fatalf("history since before the evictions starts with %#v, want an EventsLagged with Dropped >= 2", all[0])
	}
	kept := all[1:]
	if len(kept) != 2 || kept[1].Header().Seq != kept[0].Header().Seq+1 {
		t.Fatalf("kept %d events %v, want the latest 2", len(kept), kept)
	}
	if since := ts.sup.EventHistory(EventFilter{Since: kept[0].Header().At}); len(since) == 0 {
		t.Fatal("a Since within the history returned nothing")
	} else if _, lagged := since[0].(messages.EventsLagged); lagged {
		t.Fatalf("a Since within the history was marked lagged: %#v", since[0])
	}
	if only := ts.sup.EventHistory(EventFilter{Boxes: []string{"one"}, Since: kept[0].Header().At}); len(only) != 0 {
		t.Fatalf("the filter was not applied to the history: %v", only)
	}
}

// TestUpdateAddAndRemoveLabelsConcurrently: updaters that each add their
// own label at the same time all keep it (each is applied to the set the
// box has when its turn comes), a removal removes only its key, and List
// shows the result (it used to keep the labels of before the update).
func TestUpdateAddAndRemoveLabelsConcurrently(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "lab", Spec: spec("/bin/sleep", "300"), Labels: map[string]string{"keep": "yes", "drop": "me"}}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ts.sup.Update(ts.ctx(), messages.UpdateBox{ID: "lab", AddLabels: map[string]string{fmt.Sprintf("k%d", i): "v"}})
			errs <- err
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := ts.sup.Update(ts.ctx(), messages.UpdateBox{ID: "lab", RemoveLabels: []string{"drop"}})
		errs <- err
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := ts.sup.Status(ts.ctx(), "lab")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Labels) != n+1 || st.Labels["keep"] != "yes" || st.Labels["drop"] != "" {
		t.Fatalf("labels after %d concurrent adds and a removal: %v", n, st.Labels)
	}
	// List answers from the root's view, which an Update must refresh.
	if listed, err := ts.sup.List(ts.ctx(), ListOptions{Labels: "k0,!drop"}); err != nil || len(listed) != 1 || len(listed[0].Labels) != n+1 {
		t.Fatalf("List after the updates: %+v, %v", listed, err)
	}
	box, _ := ts.sup.core.home.Box("lab")
	if stored, err := box.ReadSpec(); err != nil || len(stored.Labels) != n+1 {
		t.Fatalf("spec.json labels: %v, %v", stored.Labels, err)
	}
	for name, u := range map[string]messages.UpdateBox{
		"replace and add":     {ID: "lab", Labels: map[string]string{"a": "b"}, AddLabels: map[string]string{"c": "d"}},
		"add and remove":      {ID: "lab", AddLabels: map[string]string{"c": "d"}, RemoveLabels: []string{"c"}},
		"a bad key to remove": {ID: "lab", RemoveLabels: []string{"bad key!"}},
		"a bad value to add":  {ID: "lab", AddLabels: map[string]string{"c": "bad value!"}},
	} {
		if _, err := ts.sup.Update(ts.ctx(), u); !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%s: %v, want ErrBadSpec", name, err)
		}
	}
}

// BenchmarkEventLogPublish measures what numbering and keeping an event
// adds to a publication (the stream's delivery itself is not included).
func BenchmarkEventLogPublish(b *testing.B) {
	l := newEventLog(DefaultEventHistory, time.Now())
	ev := messages.BoxReady{EventHeader: messages.EventHeader{BoxID: "web", At: time.Now(), Labels: map[string]string{"app": "web"}}, PID: 42}
	b.ReportAllocs()
	for b.Loop() {
		l.publish(ev, func(messages.Event) {})
	}
}
