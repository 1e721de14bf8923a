// Package e2e tests a boxsup cluster end to end: a real etcd, members that
// are `boxsup supervise` processes with homes of their own, clients that are
// `boxsup` commands (or this test binary re-run as a client), on loopback
// addresses or in network namespaces the tests make. It has no API.
package e2e
