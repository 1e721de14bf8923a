//go:build !race

package boxlog

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
