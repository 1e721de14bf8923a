package actors

import (
	"errors"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestUpdateRefusesALabelThatHoldsASecret (found by an attacker: a Start
// refuses such a label, an Update took it, and ps and inspect showed it).
func TestUpdateRefusesALabelThatHoldsASecret(t *testing.T) {
	t.Parallel()
	const value = "Zq7xS3cr3tV4lue"
	ts := newTestSup(t)
	s := spec("/bin/sleep", "300")
	s.Secrets = []messages.SecretVar{{Name: "TOK", Value: messages.NewSecret(value)}}
	if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "sec", Spec: s, Labels: map[string]string{"team": "infra"}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []messages.UpdateBox{
		{ID: "sec", AddLabels: map[string]string{"leak": value}},
		{ID: "sec", Labels: map[string]string{"x" + value: "v"}},
	} {
		_, err := ts.sup.Update(ts.ctx(), u)
		if !errors.Is(err, messages.ErrBadSpec) || strings.Contains(err.Error(), value) || !strings.Contains(err.Error(), "secret TOK") {
			t.Fatalf("Update %+v: %v; want ErrBadSpec naming secret TOK without its value", u, err)
		}
	}
	st, err := ts.sup.Status(ts.ctx(), "sec")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Labels) != 1 || st.Labels["team"] != "infra" {
		t.Fatalf("labels after the refused updates: %v", st.Labels)
	}
}
