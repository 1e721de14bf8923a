package client

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/messages"
)

// The client itself runs end to end in cluster/e2e (a remote endpoint per
// process); these are its parts that need none.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultListenRoutesToEtcd(t *testing.T) {
	t.Parallel()
	got, err := defaultListen("http://127.0.0.1:2379")
	if err != nil || got != "127.0.0.1:0" {
		t.Fatalf("defaultListen = %q, %v", got, err)
	}
	for _, bad := range []string{"127.0.0.1:2379", "://x", ""} {
		if _, err := defaultListen(bad); !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("defaultListen(%q): %v, want ErrBadSpec", bad, err)
		}
	}
}

func TestEventsArriveAsTheValuesMembersPublish(t *testing.T) {
	t.Parallel()
	ev, ok := asEventValue(&messages.BoxExited{Requested: true})
	if _, isValue := ev.(messages.BoxExited); !ok || !isValue {
		t.Fatalf("asEventValue(*BoxExited) = %T, %v", ev, ok)
	}
	if _, ok := asEventValue(&messages.EventsSubscribe{}); ok {
		t.Fatal("an acknowledgement taken for an event")
	}
	if _, ok := asEventValue((*messages.BoxReady)(nil)); ok {
		t.Fatal("a nil event accepted")
	}
}

func TestNewRefusesAConfigurationWithoutEtcd(t *testing.T) {
	t.Parallel()
	if _, err := New(context.Background(), Config{Cluster: "x"}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("New without etcd: %v", err)
	}
}
