package wire

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/boxsup/boxsup/messages"
)

// TestEveryRegisteredTypeRoundTrips sends one value of each registered type
// through Encode, the protobuf bytes protoactor's serializer 0 puts on the
// wire, and Decode, and gets the same value back.
func TestEveryRegisteredTypeRoundTrips(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, in := range samples() {
		name, err := TypeName(in)
		if err != nil {
			t.Fatalf("TypeName(%T): %v", in, err)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			env, err := Encode(in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if env.GetVersion() != Version || env.GetType() != name {
				t.Fatalf("envelope = %v", env)
			}
			// The path messages take today: protoactor's protobuf serializer.
			b, typeName, err := remote.Serialize(env, 0)
			if err != nil {
				t.Fatalf("remote.Serialize: %v", err)
			}
			got, err := remote.Deserialize(b, typeName, 0)
			if err != nil {
				t.Fatalf("remote.Deserialize: %v", err)
			}
			back, ok := got.(*Envelope)
			if !ok {
				t.Fatalf("serializer 0 gave %T, want *Envelope", got)
			}
			out, err := Decode(back)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("round trip changed the value:\n in: %#v\nout: %#v", in, out)
			}

			// The registered serializer's path gives the same value.
			var s Serializer
			sb, err := s.Serialize(in)
			if err != nil {
				t.Fatalf("Serializer.Serialize: %v", err)
			}
			tn, err := s.GetTypeName(in)
			if err != nil || tn != name {
				t.Fatalf("GetTypeName = %q, %v", tn, err)
			}
			out2, err := s.Deserialize(tn, sb)
			if err != nil {
				t.Fatalf("Serializer.Deserialize: %v", err)
			}
			if !reflect.DeepEqual(in, out2) {
				t.Fatalf("serializer round trip changed the value")
			}
		})
	}
	for _, name := range TypeNames() {
		if !seen[name] {
			t.Errorf("registered type %s has no sample in samples()", name)
		}
	}
}

// notMessages are the exported struct types of package messages that are
// parts of messages or files, never sent alone between actors.
var notMessages = map[string]bool{
	"InstanceSpec": true, "SecurityOptions": true, "FSShare": true, "BlockDevice": true,
	"Entrypoint": true, "GuestRootfs": true, "NetworkConfig": true, "SecretVar": true, "Secret": true,
	"RestartPolicy": true, "EventHeader": true, "Identity": true, "StateRecord": true,
	"ExitRecord": true, "BoxMetrics": true, "EngineCapabilities": true, "FieldSupport": true, "LogRotation": true,
	"Placement": true, "PeerSeen": true,
	"HealthCheck": true, "HTTPStatusRange": true, "HealthResult": true, "BoxHealth": true,
	"BoxPaths": true, "Limits": true, // parts of BoxInspect
}

// TestRegistryCoversPackageMessages parses package messages and requires
// every exported struct type to be registered or listed in notMessages, so
// that a message added later cannot silently fail to cross hosts.
func TestRegistryCoversPackageMessages(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "messages")
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var structs []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					if _, isStruct := ts.Type.(*ast.StructType); isStruct && ts.Name.IsExported() {
						structs = append(structs, ts.Name.Name)
					}
				}
			}
		}
	}
	sort.Strings(structs)
	if len(structs) == 0 {
		t.Fatal("found no struct types in package messages")
	}
	registered := map[string]bool{}
	for _, n := range TypeNames() {
		registered[n] = true
	}
	for _, name := range structs {
		if registered[name] == notMessages[name] {
			t.Errorf("messages.%s: registered=%v, listed as not a message=%v; decide which", name, registered[name], notMessages[name])
		}
	}
}

func TestDecodeRefusesWithTypedErrors(t *testing.T) {
	t.Parallel()
	good, err := Encode(&messages.Stop{ID: "web"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  *Envelope
		want error
	}{
		{"nil envelope", nil, ErrMalformed},
		{"unknown type", &Envelope{Type: "LaunchMissiles", Version: Version, Payload: []byte(`{}`)}, ErrUnknownType},
		{"empty type", &Envelope{Version: Version, Payload: []byte(`{}`)}, ErrUnknownType},
		{"version 0", &Envelope{Type: "Stop", Payload: good.Payload}, ErrUnsupportedVersion},
		{"future version", &Envelope{Type: "Stop", Version: Version + 1, Payload: good.Payload}, ErrUnsupportedVersion},
		{"unknown field", &Envelope{Type: "Stop", Version: Version, Payload: []byte(`{"id":"web","placement":"spread"}`)}, ErrMalformed},
		{"wrong field type", &Envelope{Type: "Stop", Version: Version, Payload: []byte(`{"id":7}`)}, ErrMalformed},
		{"not JSON", &Envelope{Type: "Stop", Version: Version, Payload: []byte(`{"id":`)}, ErrMalformed},
		{"empty payload", &Envelope{Type: "Stop", Version: Version}, ErrMalformed},
		{"trailing data", &Envelope{Type: "Stop", Version: Version, Payload: []byte(`{"id":"a"} {"id":"b"}`)}, ErrMalformed},
		{"oversized", &Envelope{Type: "Stop", Version: Version, Payload: make([]byte, MaxPayload+1)}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := Decode(c.env)
			if !errors.Is(err, c.want) || msg != nil {
				t.Fatalf("Decode = %v, %v; want error %v", msg, err, c.want)
			}
		})
	}
}

func TestEncodeRefusesUnregisteredTypes(t *testing.T) {
	t.Parallel()
	for _, msg := range []any{nil, "text", &messages.InstanceSpec{}, messages.StateRecord{}, (*messages.Stop)(nil)} {
		if env, err := Encode(msg); err == nil {
			t.Errorf("Encode(%T) = %v, want an error", msg, env)
		}
	}
	if _, err := Encode(messages.Stop{ID: "value, not pointer"}); err != nil {
		t.Errorf("Encode of a value: %v", err)
	}
}

func TestSerializerRefusesMismatchedTypeName(t *testing.T) {
	t.Parallel()
	var s Serializer
	b, err := s.Serialize(&messages.Stop{ID: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deserialize("Kill", b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("mismatched name: %v", err)
	}
	if _, err := s.Deserialize("Stop", []byte{0xff, 0xff, 0xff}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage bytes: %v", err)
	}
}

// FuzzDecode: no input makes Decode panic.
func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		env, err := Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := proto.Marshal(env)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env := &Envelope{}
		if proto.Unmarshal(b, env) != nil {
			return
		}
		env.Version = Version
		_, _ = Decode(env)
	})
}
