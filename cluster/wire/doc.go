// Package wire carries boxsup's messages (package messages) between hosts
// over protoactor's remote transport.
//
// A message travels as an *Envelope: a protobuf message with the message's
// registry name, the wire format's Version and the message's JSON. The
// receiving actor gets the *Envelope itself and calls Decode, so that a
// message it cannot read is answered with an error instead of being lost
// inside the transport.
//
// Why an envelope rather than only a remote.Serializer: at the pinned
// protoactor-go version the endpoint writer never reads the serializer id a
// message was sent with and always encodes with serializer 0 (protobuf). A
// serializer registered with remote.RegisterSerializer is therefore reachable
// only by a peer that sends with its id, which this version never does.
// Serializer is provided, and registered when the package initialises, so
// that the same codec serves both paths once upstream honours the id; today
// every message crosses as an Envelope through the protobuf serializer.
//
// Decoding is strict: an unknown type name is ErrUnknownType, a version this
// build does not speak is ErrUnsupportedVersion, and a JSON field the local
// message type does not have is ErrMalformed. A field the receiver would
// silently drop could not be honoured, so it is refused.
//
// The payload of a StartBox holds the spec's secrets in clear text: send it
// only over mutual TLS, and never print an Envelope's payload. Envelope
// formats itself (fmt, slog) without its payload.
package wire

//go:generate protoc --go_out=../.. --go_opt=paths=source_relative --proto_path=../.. cluster/wire/envelope.proto
