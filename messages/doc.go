// Package messages is boxsup's vocabulary: the InstanceSpec handed to a shim,
// the exit record a shim leaves behind, the state record kept per box, the
// actor messages and lifecycle events, supervision options and typed errors.
//
// It is a leaf package and does no I/O. Every type here round-trips through
// encoding/json unchanged, so that a serializer can carry the messages over
// protoactor's remote transport later.
package messages
