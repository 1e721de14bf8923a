package messages

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fillSecrets sets every Secret reachable from v (through structs,
// pointers and slices, allocating them) to value, and returns how many it
// set: a Secret field added to the spec later is covered without this test
// naming it.
func fillSecrets(v reflect.Value, value string) int {
	secretType := reflect.TypeFor[Secret]()
	switch {
	case v.Type() == secretType:
		v.Set(reflect.ValueOf(NewSecret(value)))
		return 1
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return fillSecrets(v.Elem(), value)
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		n := 0
		for i := range v.Len() {
			n += fillSecrets(v.Index(i), value)
		}
		return n
	case v.Kind() == reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += fillSecrets(v.Field(i), value)
			}
		}
		return n
	}
	return 0
}

func randomSentinel(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "sentinel-" + hex.EncodeToString(b[:])
}

// TestRedactedHidesEverySecret: a random sentinel put in every Secret of a
// StartBox (found by reflection) appears nowhere in its redacted copy,
// printed or encoded, while the original keeps it (the spec on disk needs
// it).
func TestRedactedHidesEverySecret(t *testing.T) {
	t.Parallel()
	sentinel := randomSentinel(t)
	orig := StartBox{ID: "web", Spec: sampleSpec()}
	if n := fillSecrets(reflect.ValueOf(&orig).Elem(), sentinel); n < 2 {
		t.Fatalf("filled %d secrets, want at least 2 (a secret variable and the CA key)", n)
	}
	red := orig.Redacted()
	raw, err := json.Marshal(red)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"json": string(raw), "%v": fmt.Sprintf("%v", red), "%+v": fmt.Sprintf("%+v", red), "%#v": fmt.Sprintf("%#v", red),
	} {
		if strings.Contains(out, sentinel) {
			t.Errorf("%s of the redacted spec holds the secret:\n%s", name, out)
		}
	}
	if !strings.Contains(string(raw), Redacted) {
		t.Errorf("the redacted spec does not say %s:\n%s", Redacted, raw)
	}
	origRaw, _ := json.Marshal(orig)
	if strings.Count(string(origRaw), sentinel) < 2 {
		t.Errorf("Redacted changed the original spec:\n%s", origRaw)
	}
	if red.Spec.Secrets[0].Name != orig.Spec.Secrets[0].Name {
		t.Errorf("secret names must stay visible: got %q", red.Spec.Secrets[0].Name)
	}
}

// TestRedactedKeepsEmptySecretsEmpty: an empty secret is not shown as set.
func TestRedactedKeepsEmptySecretsEmpty(t *testing.T) {
	t.Parallel()
	spec := InstanceSpec{Secrets: []SecretVar{{Name: "EMPTY"}}, NetworkConfig: &NetworkConfig{SocketPath: "/s"}}
	red := spec.Redacted()
	if !red.Secrets[0].Value.IsZero() || !red.NetworkConfig.CAKeyPEM.IsZero() {
		t.Fatalf("an empty secret became %+v", red)
	}
}

// TestUpdateBoxNewLabels: Labels replaces the set, AddLabels and
// RemoveLabels change single keys, nothing touches the old map.
func TestUpdateBoxNewLabels(t *testing.T) {
	t.Parallel()
	old := map[string]string{"a": "1", "b": "2"}
	cases := []struct {
		name    string
		u       UpdateBox
		want    map[string]string
		touches bool
	}{
		{"none", UpdateBox{}, old, false},
		{"replace", UpdateBox{Labels: map[string]string{"c": "3"}}, map[string]string{"c": "3"}, true},
		{"add", UpdateBox{AddLabels: map[string]string{"b": "9", "c": "3"}}, map[string]string{"a": "1", "b": "9", "c": "3"}, true},
		{"remove", UpdateBox{RemoveLabels: []string{"a", "zz"}}, map[string]string{"b": "2"}, true},
		{"remove all", UpdateBox{RemoveLabels: []string{"a", "b"}}, map[string]string{}, true},
	}
	for _, c := range cases {
		got, touches := c.u.NewLabels(old)
		if touches != c.touches || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v (touches %v), want %v (%v)", c.name, got, touches, c.want, c.touches)
		}
	}
	if !reflect.DeepEqual(old, map[string]string{"a": "1", "b": "2"}) {
		t.Errorf("NewLabels changed the old set: %v", old)
	}
	if !(UpdateBox{ID: "x"}).Empty() || (UpdateBox{ID: "x", RemoveLabels: []string{"a"}}).Empty() {
		t.Error("Empty is wrong")
	}
}
