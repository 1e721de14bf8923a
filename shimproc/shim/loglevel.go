package shim

import (
	"fmt"
	"os"
	"strings"
)

// LogLevelEnv names the variable that sets the level of the shim's own log
// (shim.log): the supervisor passes its own level there, as boxlite passes
// RUST_LOG to its shim. Unset or empty means info.
const LogLevelEnv = "BOXSUP_LOG"

// logLevel is how much the shim writes to shim.log; a line is written when
// its level is at most the shim's.
type logLevel uint8

// The levels, from the fewest lines to the most (the supervisor's names).
const (
	levelError logLevel = iota
	levelWarn
	levelInfo
	levelDebug
	levelTrace
)

var levelNames = [...]string{levelError: "error", levelWarn: "warn", levelInfo: "info", levelDebug: "debug", levelTrace: "trace"}

func (l logLevel) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level?"
}

// shimLogLevel reads LogLevelEnv. A value the supervisor's logger would
// refuse is a usage error, not a guess.
func shimLogLevel() (logLevel, error) {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(LogLevelEnv)))
	switch v {
	case "", "info":
		return levelInfo, nil
	case "trace":
		return levelTrace, nil
	case "debug":
		return levelDebug, nil
	case "warn", "warning":
		return levelWarn, nil
	case "error":
		return levelError, nil
	}
	return levelInfo, fmt.Errorf("%s=%q is not a log level (trace, debug, info, warn or error)", LogLevelEnv, v)
}
