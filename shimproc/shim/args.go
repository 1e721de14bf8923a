package shim

import (
	"fmt"
	"strings"
)

// usageText is printed with every usage error.
const usageText = "usage: boxsup-shim --box-id ID   (the InstanceSpec as JSON on stdin)"

// parseArgs accepts exactly `--box-id ID` (argv without the program name)
// and returns the ID. Anything else is a usage error: the supervisor never
// passes more, and nothing else may appear on a command line, which any user
// can read in /proc.
func parseArgs(args []string) (string, error) {
	if len(args) != 2 || args[0] != "--box-id" {
		return "", fmt.Errorf("want exactly the arguments --box-id ID, got %d argument(s)", len(args))
	}
	id := args[1]
	if id == "" || strings.HasPrefix(id, "-") {
		return "", fmt.Errorf("--box-id needs a box ID as its value")
	}
	return id, nil
}
