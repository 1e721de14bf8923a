package messages

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// coreFields are the spec fields every shim honours (contract version 1);
// everything else is optional and must be declared by an engine.
var coreFields = []string{
	"version", "engine", "box_id", "guest_entrypoint", "transport", "ready_transport",
	"console_output", "exit_file", "detach", "secrets",
}

// Every field of InstanceSpec and SecurityOptions is either core or listed
// by OptionalFields, so a field added later cannot slip past the
// capability check unnoticed.
func TestOptionalFieldsCoverTheSpec(t *testing.T) {
	var want []string
	specType := reflect.TypeFor[InstanceSpec]()
	for i := range specType.NumField() {
		f := specType.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case slices.Contains(coreFields, name):
		case name == "security":
			for j := range f.Type.NumField() {
				sub, _, _ := strings.Cut(f.Type.Field(j).Tag.Get("json"), ",")
				want = append(want, "security."+sub)
			}
		default:
			want = append(want, name)
		}
	}
	got := OptionalFields()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("OptionalFields() = %v\nwant (every non-core field) %v", got, want)
	}
}

func TestSetOptionalFields(t *testing.T) {
	full := sampleSpec()
	full.RestartInPlace = true // the supervisor's; never with ready_transport, but set here to be counted
	if got, want := full.SetOptionalFields(), OptionalFields(); !slices.Equal(got, want) {
		t.Errorf("a spec with every field set: SetOptionalFields() = %v, want %v", got, want)
	}
	plain := InstanceSpec{Engine: EngineProcess, BoxID: "b", GuestEntrypoint: Entrypoint{Executable: "/bin/true"},
		ConsoleOutput: "/c", ExitFile: "/e", Detach: true, Secrets: []SecretVar{{Name: "A", Value: NewSecret("x")}}}
	if got := plain.SetOptionalFields(); len(got) != 0 {
		t.Errorf("a spec with core fields only: SetOptionalFields() = %v, want none", got)
	}
	one := plain
	one.Security.MaxOpenFiles = 64
	if got := one.SetOptionalFields(); !slices.Equal(got, []string{FieldMaxOpenFiles}) {
		t.Errorf("SetOptionalFields() = %v, want [%s]", got, FieldMaxOpenFiles)
	}
}

func TestValidateSecurityIdentity(t *testing.T) {
	for name, mut := range map[string]func(*SecurityOptions){
		"security.uid":       func(o *SecurityOptions) { o.UID = 1<<32 - 1 },
		"security.gid":       func(o *SecurityOptions) { o.GID = 1<<32 - 1 },
		"security.groups[1]": func(o *SecurityOptions) { o.Groups = []uint32{5, 1<<32 - 1} },
		"security.groups":    func(o *SecurityOptions) { o.Groups = make([]uint32, maxGroups+1) },
	} {
		spec := sampleSpec()
		mut(&spec.Security)
		err := spec.Validate()
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate() = %v, want ErrBadSpec naming the field", name, err)
		}
	}
}

// ErrUnsupported is also ErrBadSpec, also after a trip through JSON; a bad
// spec is not unsupported.
func TestUnsupportedIsAlsoBadSpec(t *testing.T) {
	err := Errorf(ErrUnsupported, "security.uid: engine %q does not honour it", "x")
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrBadSpec) {
		t.Errorf("errors.Is(unsupported, ErrUnsupported / ErrBadSpec) = %v / %v, want both", errors.Is(err, ErrUnsupported), errors.Is(err, ErrBadSpec))
	}
	if errors.Is(Errorf(ErrBadSpec, "x"), ErrUnsupported) {
		t.Error("a bad spec matches ErrUnsupported; the relation must go one way only")
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("an unsupported field matches ErrNotFound")
	}
	raw, _ := json.Marshal(AsError(err))
	var back *Error
	if e := json.Unmarshal(raw, &back); e != nil {
		t.Fatal(e)
	}
	if !errors.Is(back, ErrBadSpec) || !errors.Is(back, ErrUnsupported) {
		t.Errorf("after JSON, %v no longer matches both sentinels", back)
	}
}

func TestCapabilitiesValidate(t *testing.T) {
	good := EngineCapabilities{Version: CapabilitiesVersion, Engine: EngineProcess, Protocol: SpecVersion,
		Fields: map[string]FieldSupport{FieldUID: {}, FieldCPUs: {Cgroup: []CgroupController{ControllerCPU}}, "future.field": {}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for name, mut := range map[string]func(*EngineCapabilities){
		"version":   func(c *EngineCapabilities) { c.Version = 2 },
		"engine":    func(c *EngineCapabilities) { c.Engine = "a/b" },
		"no engine": func(c *EngineCapabilities) { c.Engine = "" },
		"protocol":  func(c *EngineCapabilities) { c.Protocol = 7 },
		"controller": func(c *EngineCapabilities) {
			c.Fields = map[string]FieldSupport{FieldCPUs: {Cgroup: []CgroupController{"io"}}}
		},
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
