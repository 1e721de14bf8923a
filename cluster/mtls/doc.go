// Package mtls makes the mutual-TLS configuration of a boxsup cluster: every
// protoactor remote connection between hosts, and between a client and a
// host, is TLS 1.3 with certificates on both sides, signed by the cluster's
// own CA.
//
// Trust is the CA file: a peer whose certificate does not chain to it is
// refused during the handshake, before a single message is read. Node
// certificates serve and dial (server and client auth, with the node's
// advertise host as a SAN); client certificates only dial. Files are
// untrusted input: they are opened without following symlinks and refused
// when a key can be read by others or a file can be written by others.
//
// Plain-text remote exists only through Insecure, an explicit opt-in that
// logs InsecureWarning at every start.
package mtls
