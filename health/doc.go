// Package health runs boxes' health checks (messages.HealthCheck) for the
// supervisor: the probes (exec inside the box, tcp, http, unix), a
// Scheduler that runs the checks of many boxes with bounded concurrency,
// and a Tracker, the pure rules that turn a generation's results into its
// health state (starting, healthy, unhealthy). It holds no actor and does no
// logging: the box actor owns a Tracker per generation, feeds it the results
// the Scheduler delivers, and publishes what changes.
//
// A health check is the supervisor's, not the shim's: the shim contract
// (docs/SHIM-PROTOCOL.md) does not know about it, and any engine's box can
// have a tcp, http or unix check. docs/ARCHITECTURE.md ("Health checks")
// describes the design and how the box actor drives it.
package health
