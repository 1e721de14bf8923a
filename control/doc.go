// Package control lets boxsup commands reach a home's supervisor.
//
// A long-running supervisor (boxsup supervise, or an embedder's own process)
// serves a control API on a Unix socket in its home (Server). Any other
// process on the same host reaches it with a Client. Both the Client and the
// in-process Local adapter implement Backend, so a command written against
// Backend behaves the same whether or not a supervisor is running: Connect
// returns a Client when one answers on the home's socket, else a Local that
// opens a Supervisor of its own for the duration of the command.
//
// Protocol (version ProtocolVersion, reported by ping): one JSON request per
// connection, answered by one JSON response line (run and events send more
// lines before it; see OpRun). Errors cross the wire as *messages.Error, so
// errors.Is against the messages sentinels keeps working in the client. The
// socket is created 0600 in a 0700 directory, and every connection's peer
// credentials (SO_PEERCRED) are checked: only the server's own uid and root
// get an answer.
//
// The Prometheus exporter that boxsup supervise serves is in package
// promexport, so that a program using this package does not link
// client_golang for it.
package control
