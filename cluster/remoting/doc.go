// Package remoting starts protoactor's remote transport the way a boxsup
// cluster needs it, and sends boxsup messages across it.
//
//   - Every connection is mutual TLS (or plain text on an explicit opt-in,
//     with a warning), through mtls.Transport: remote's default is plain
//     text.
//   - Messages cross as wire envelopes (package wire); Request encodes,
//     waits on a one-shot inbox and decodes.
//   - Each member's root supervisor is spawned under the well-known name
//     RootName, so its PID on another host is just (address, RootName); no
//     cluster identity lookup, no grain activation.
//   - The loss of a connection (remote's EndpointTerminatedEvent) is handed
//     to OnEndpointLost; it means "unknown", never "dead".
//
// A protoactor remote endpoint is peer to peer: a reply travels over a
// connection the answering side dials back to the asker's own address
// (remote's client-only connection is not implemented at the pinned
// version). So a client is a full endpoint too: it listens, advertises an
// address the members can reach, and presents a certificate valid for it.
package remoting
