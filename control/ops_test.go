package control

import (
	"reflect"
	"testing"

	"github.com/boxsup/boxsup/actors"
)

// TestOperationsAreListedOnce: every Backend method but Home and Close is
// exactly one operation of the table, every operation's method is a Backend
// method, and the facade (actors.Supervisor) has each one too: the request
// surface is listed once, and the four sides cannot drift apart.
func TestOperationsAreListedOnce(t *testing.T) {
	t.Parallel()
	backend := reflect.TypeFor[Backend]()
	sup := reflect.TypeFor[*actors.Supervisor]()
	byMethod := map[string]Op{}
	seenOp := map[Op]bool{}
	for _, o := range operations {
		if seenOp[o.op] {
			t.Errorf("operation %q is listed twice", o.op)
		}
		seenOp[o.op] = true
		if o.method == "" {
			if o.op != OpPing {
				t.Errorf("operation %q serves no Backend method", o.op)
			}
			continue
		}
		if prev, dup := byMethod[o.method]; dup {
			t.Errorf("Backend.%s is served by %q and %q", o.method, prev, o.op)
		}
		byMethod[o.method] = o.op
		if _, ok := backend.MethodByName(o.method); !ok {
			t.Errorf("operation %q names Backend.%s, which does not exist", o.op, o.method)
		}
		if o.serve == nil {
			t.Errorf("operation %q has no server side", o.op)
		}
	}
	for i := range backend.NumMethod() {
		m := backend.Method(i).Name
		if m == "Home" || m == "Close" {
			continue
		}
		if _, ok := byMethod[m]; !ok {
			t.Errorf("Backend.%s is not an operation of the table", m)
		}
		// Run and Events are built from Start, Wait and Subscribe.
		facade := map[string]string{"Run": "Start", "Events": "Subscribe"}[m]
		if facade == "" {
			facade = m
		}
		if _, ok := sup.MethodByName(facade); !ok {
			t.Errorf("Backend.%s has no actors.Supervisor.%s behind it", m, facade)
		}
	}
	var _ Backend = (*Client)(nil)
	var _ Backend = (*Local)(nil)
	var _ Backend = (*reconnecting)(nil)
}

// TestEventKindsAreDecoded: every kind EventKinds lists decodes to the
// value type of that kind, as the supervisor publishes it.
func TestEventKindsAreDecoded(t *testing.T) {
	t.Parallel()
	for _, k := range EventKinds() {
		ev, err := decodeEvent(&EventLine{Kind: k, Data: []byte(`{"box_id":"web","seq":7}`)})
		if err != nil || ev == nil || ev.Kind() != k || ev.Box() != "web" || ev.Header().Seq != 7 {
			t.Errorf("kind %s: decoded %#v, %v", k, ev, err)
		}
	}
	if ev, err := decodeEvent(&EventLine{Kind: "BoxFromTheFuture", Data: []byte(`{}`)}); ev != nil || err != nil {
		t.Errorf("an unknown kind: %#v, %v; want it skipped", ev, err)
	}
}
