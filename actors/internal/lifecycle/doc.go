// Package lifecycle is a box's lifecycle as a pure state machine: the
// decisions of a box actor without its I/O.
//
// A Machine is fed Events (requests from callers, results of the work the
// actor did for it, timers) and answers each with Effects (write state.json,
// spawn the shim, send SIGTERM, arm a timer, reply to a caller, publish an
// event). It never blocks, never touches a process or a file and never reads
// the clock except through its Env, so every order of events can be played
// against it in a test.
//
// Every (Phase, event kind) pair is a row of one table (table.go), which
// names the phases the row may lead to; a handler that tries another is
// refused with an *IllegalTransitionError. docs/ARCHITECTURE.md shows the
// diagram that Diagram renders from the table, and a test fails when the two
// differ.
package lifecycle
