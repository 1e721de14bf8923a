//go:build race

package boxlog

// raceEnabled is true when the tests run under the race detector; the shim
// under test is then built with -race as well.
const raceEnabled = true
