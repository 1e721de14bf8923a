//go:build race

package main

// raceEnabled: the tests run under the race detector, so the binaries they
// build are built with it too.
const raceEnabled = true
