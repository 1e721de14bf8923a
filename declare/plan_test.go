package declare

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// applyFile plans src against b and applies it.
func applyFile(t *testing.T, b *fakeBackend, src string, opts ApplyOptions) (*Plan, []Outcome, error) {
	t.Helper()
	f := mustParse(t, src)
	cur, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ComputePlan(f, cur)
	if err != nil {
		return nil, nil, err
	}
	out, err := Apply(context.Background(), b, p, opts)
	return p, out, err
}

const chainFile = `boxes:
  db: {command: [x]}
  cache: {command: [x]}
  web: {command: [x], depends_on: [db, cache]}
  api: {command: [x], depends_on: [web]}
`

func TestApplyCreatesWaveByWave(t *testing.T) {
	t.Parallel()
	b := newFake()
	p, out, err := applyFile(t, b, chainFile, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Count(ActionCreate) != 4 || len(out) != 4 {
		t.Fatalf("plan %+v outcomes %+v", p.Changes, out)
	}
	ops := b.opsLog()
	first := ops[:2]
	slices.Sort(first)
	if strings.Join(first, ",") != "create cache,create db" || ops[2] != "create web" || ops[3] != "create api" {
		t.Fatalf("operations out of dependency order: %v", ops)
	}
	// A second apply changes nothing.
	p, _, err = applyFile(t, b, chainFile, ApplyOptions{})
	if err != nil || !p.Empty() || len(b.opsLog()) != 4 {
		t.Fatalf("second apply: %v, plan %+v, ops %v", err, p.Changes, b.opsLog())
	}
}

func TestPlanActions(t *testing.T) {
	t.Parallel()
	b := newFake()
	if _, _, err := applyFile(t, b, `boxes:
  keep: {command: [x]}
  replace: {command: [x]}
  update: {command: [x], restart: always}
  start: {command: [x]}
  gone: {command: [x]}
`, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	st := b.boxes["start"]
	st.State = messages.StateExited
	b.boxes["start"] = st
	b.boxes["stranger"] = Existing{ID: "stranger", State: messages.StateRunning}
	b.mu.Unlock()

	next := `boxes:
  keep: {command: [x]}
  replace: {command: [y]}
  update: {command: [x], restart: on-failure}
  start: {command: [x]}
  new: {command: [x], depends_on: [replace]}
`
	f := mustParse(t, next)
	cur, _ := b.List(context.Background())
	p, err := ComputePlan(f, cur)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Action{}
	for _, c := range p.Changes {
		got[c.ID] = c.Action
	}
	want := map[string]Action{"keep": ActionNone, "replace": ActionReplace, "update": ActionUpdate,
		"start": ActionStart, "new": ActionCreate, "gone": ActionRemove}
	for id, a := range want {
		if got[id] != a {
			t.Errorf("%s: action %q, want %q", id, got[id], a)
		}
	}
	if _, ok := got["stranger"]; ok {
		t.Error("a box this file did not create is in the plan")
	}
	var buf bytes.Buffer
	if err := p.Render(&buf); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`  # box "replace" must be replaced (wave 1)`,
		`-/+ box "replace" {`,
		`  ~ box "update" {`,
		`      ~ restart = "on-failure"`,
		`  > box "start"`,
		`  # box "new" will be created (wave 2)`,
		`  - box "gone"`,
		"Plan: 1 to create, 1 to replace, 1 to update, 1 to start, 1 to remove, 1 unchanged.",
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("plan lacks %q:\n%s", line, buf.String())
		}
	}

	if _, err := Apply(context.Background(), b, p, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ops := b.opsLog()[5:]
	idx := func(op string) int {
		i := slices.Index(ops, op)
		if i < 0 {
			t.Fatalf("no %q in %v", op, ops)
		}
		return i
	}
	if !(idx("remove gone") < idx("remove replace") && idx("remove replace") < idx("create replace") &&
		idx("create replace") < idx("create new")) {
		t.Errorf("operations out of order: %v", ops)
	}
	idx("update update")
	idx("start start")
	if slices.Contains(ops, "create keep") || slices.Contains(ops, "remove stranger") {
		t.Errorf("untouched boxes touched: %v", ops)
	}
}

func TestPlanRefusesBoxesItDidNotCreate(t *testing.T) {
	t.Parallel()
	b := newFake()
	b.boxes["web"] = Existing{ID: "web", State: messages.StateRunning, Labels: map[string]string{LabelApplyID: "other"}}
	_, _, err := applyFile(t, b, "boxes:\n  web: {command: [x]}\n", ApplyOptions{})
	if err == nil || !errors.Is(err, messages.ErrAlreadyExists) || !strings.Contains(err.Error(), "[web]") {
		t.Fatalf("apply over a stranger = %v", err)
	}
	if len(b.opsLog()) != 0 {
		t.Fatalf("operations done: %v", b.opsLog())
	}
}

func TestApplyRefusesWhatTheBackendCannotHonour(t *testing.T) {
	t.Parallel()
	cases := []struct {
		caps Capabilities
		src  string
		want string
	}{
		{Capabilities{}, "boxes:\n  web: {command: [x]}\n", "cannot store box labels"},
		{Capabilities{Labels: true}, "boxes:\n  web: {command: [x], healthcheck: {tcp: '127.0.0.1:80'}}\n", "box web: healthcheck: this supervisor has no health checks"},
		{Capabilities{Labels: true}, "boxes:\n  db: {command: [x]}\n  web: {command: [x], depends_on: {db: {condition: healthy}}}\n", "condition healthy needs health checks"},
	}
	for _, c := range cases {
		b := newFake()
		b.caps = c.caps
		_, _, err := applyFile(t, b, c.src, ApplyOptions{})
		if err == nil || !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("caps %+v: Apply = %v, want %q", c.caps, err, c.want)
		}
		if len(b.opsLog()) != 0 {
			t.Errorf("caps %+v: operations done before the refusal: %v", c.caps, b.opsLog())
		}
	}
	// An update in place without Update is refused, before anything else.
	b := newFake()
	if _, _, err := applyFile(t, b, "boxes:\n  web: {command: [x]}\n", ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	b.caps.Update = false
	_, _, err := applyFile(t, b, "boxes:\n  web: {command: [x], stop_timeout: 3s}\n  db: {command: [x]}\n", ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot update a box in place") || len(b.opsLog()) != 1 {
		t.Fatalf("update without Update: %v, ops %v", err, b.opsLog())
	}
}

// TestApplyUpdatesThenStartsABoxAtRest: a box whose settings changed
// while it was at rest is updated in place and started again, as an
// unchanged box at rest would be.
func TestApplyUpdatesThenStartsABoxAtRest(t *testing.T) {
	t.Parallel()
	b := newFake()
	if _, _, err := applyFile(t, b, "boxes:\n  web: {command: [x]}\n", ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	st := b.boxes["web"]
	st.State = messages.StateExited
	b.boxes["web"] = st
	b.mu.Unlock()
	p, _, err := applyFile(t, b, "boxes:\n  web: {command: [x], restart: always}\n", ApplyOptions{})
	if err != nil || p.Count(ActionUpdate) != 1 {
		t.Fatalf("apply: %v, plan %+v", err, p)
	}
	if ops := b.opsLog(); strings.Join(ops[1:], ",") != "update web,start web" {
		t.Fatalf("operations %v, want the update then the start", ops)
	}
}

func TestApplySkipsDependentsOfAFailure(t *testing.T) {
	t.Parallel()
	b := newFake()
	b.failOn["create db"] = true
	_, out, err := applyFile(t, b, chainFile, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), "box web: not started: its dependency db failed") {
		t.Fatalf("Apply = %v", err)
	}
	if !strings.Contains(err.Error(), "box api: not started: its dependency web failed") {
		t.Errorf("a dependent's dependent was not skipped: %v", err)
	}
	if ops := b.opsLog(); slices.Contains(ops, "create web") || !slices.Contains(ops, "create cache") {
		t.Errorf("ops %v", ops)
	}
	if len(out) != 4 {
		t.Errorf("outcomes %+v", out)
	}
}

func TestApplyWaitsForHealthyDependencies(t *testing.T) {
	t.Parallel()
	b := newFake()
	if _, _, err := applyFile(t, b, "boxes:\n  db: {command: [x], healthcheck: {tcp: '127.0.0.1:5432'}}\n  web: {command: [x], depends_on: {db: {condition: healthy}}}\n", ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if ops := b.opsLog(); strings.Join(ops, ",") != "create db,healthy db,create web" {
		t.Fatalf("ops %v", ops)
	}
}

func TestApplyBoundsParallelism(t *testing.T) {
	t.Parallel()
	b := newFake()
	b.gate = make(chan struct{})
	var src strings.Builder
	src.WriteString("boxes:\n")
	for i := range 20 {
		src.WriteString("  b" + string(rune('a'+i)) + ": {command: [x]}\n")
	}
	done := make(chan error, 1)
	f := mustParse(t, src.String())
	p, err := ComputePlan(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := Apply(context.Background(), b, p, ApplyOptions{Parallel: 3})
		done <- err
	}()
	for range 20 {
		b.gate <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if peak := b.peak.Load(); peak > 3 || peak < 1 {
		t.Fatalf("peak parallelism %d, want at most 3", peak)
	}
}

// TestPlanNeverShowsSecretValues renders a plan with secrets.
func TestPlanNeverShowsSecretValues(t *testing.T) {
	t.Parallel()
	f := mustParse(t, fullFile)
	p, err := ComputePlan(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.Render(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, secretValue) || strings.Contains(out, "file-token-0042") {
		t.Fatalf("the plan shows a secret value:\n%s", out)
	}
	for _, want := range []string{
		`PGPASSWORD = (sensitive, from env DB_PASSWORD)`,
		`TOKEN = (sensitive, from file /srv/app/token.txt)`,
		`+ command       = ["/usr/bin/postgres", "-D", "/var/lib/pg"]`,
		`+ depends_on = ["db" (ready), "web" (ready)]`,
		"Plan: 3 to create, 0 to replace, 0 to update, 0 to start, 0 to remove, 0 unchanged.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}
