// Package bench measures boxsup against the physical floors of the machine it
// runs on (the design's performance targets). Every row of the report puts a boxsup operation
// next to the cheapest way to do the same thing with plain os/exec, pidfds
// and /proc, measured in the same run, so that the ratio, not the absolute
// number, says how much the supervisor costs.
//
// The rows:
//
//  1. start→ready of one box vs the same shim started with os/exec until its
//     ready byte;
//  2. stop of a cooperative box vs SIGTERM→exit seen on a pidfd, plus
//     boxlite's stop (SIGTERM, poll every 50 ms, SIGKILL after 2 s)
//     re-created here for comparison;
//  3. stop of a box that ignores SIGTERM (100 ms timeout): reply minus the
//     timeout, vs SIGKILL→exit on a pidfd;
//  4. start and stop of Boxes boxes at once vs raw spawns and SIGTERM-all;
//  5. MetricsAll vs reading /proc/PID/stat and statm for the same PIDs;
//  6. adopting Boxes detached boxes with a new Supervisor;
//  7. supervisor threads, heap and goroutines per box;
//  8. restart after a crash with policy "always" and no backoff;
//  9. applying a file of Boxes boxes vs as many Starts;
//  10. the CPU of Boxes tcp health checks every second (health.Scheduler)
//     vs a bare loop dialling the same listeners at the same rate;
//  11. Start, Stop and Metrics of a box on another cluster member (a
//     process, over loopback with mTLS) against the local root;
//  12. a cluster-wide ps over 3 members × ClusterBoxes boxes against the
//     ps of one member.
//
// cmd/boxsup-bench runs them and renders the markdown table and
// bench/results.json; docs/PERFORMANCE.md explains the floors.
package bench
