package wire

import (
	"fmt"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
)

// Serializer implements remote.Serializer with the same codec as Encode and
// Decode: the bytes are a marshalled Envelope, the type name its registry
// name. See the package comment for why, at the pinned protoactor version,
// messages actually cross as *Envelope through the protobuf serializer.
type Serializer struct{}

var _ remote.Serializer = Serializer{}

// Serialize encodes a message of package messages.
func (Serializer) Serialize(msg any) ([]byte, error) {
	env, err := Encode(msg)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(env)
}

// GetTypeName returns the registry name of msg's type.
func (Serializer) GetTypeName(msg any) (string, error) { return TypeName(msg) }

// Deserialize decodes bytes made by Serialize. The type name remote carried
// beside them must match the envelope's.
func (Serializer) Deserialize(typeName string, b []byte) (any, error) {
	if len(b) > MaxPayload+1024 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	env := &Envelope{}
	if err := proto.Unmarshal(b, env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if env.GetType() != typeName {
		return nil, fmt.Errorf("%w: envelope says %q, transport says %q", ErrMalformed, truncate(env.GetType(), 64), truncate(typeName, 64))
	}
	return Decode(env)
}

// init registers Serializer with remote. remote's list of serializers is a
// plain global slice, read without a lock on every send, so registering is
// only safe before any remote traffic: package initialisation is that time.
// remote offers no way to learn the id it got, which is one more reason the
// envelope path carries the traffic.
func init() { remote.RegisterSerializer(Serializer{}) }
