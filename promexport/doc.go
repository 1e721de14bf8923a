// Package promexport exports a boxsup supervisor's boxes as Prometheus
// metrics: an Exporter (a prometheus.Collector sampling a Source on each
// scrape, plus start and stop latency histograms), a registry holding it with
// the Go runtime and process collectors, and an HTTP server for /metrics.
//
// It is a package of its own so that a program that only talks to a
// supervisor (package control) does not link client_golang. The series
// names are stable; docs/METRICS.md lists them with the dashboard and the
// alerting rules built on them.
package promexport
