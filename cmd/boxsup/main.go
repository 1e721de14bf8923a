// Command boxsup is the operator's and demo binary of boxsup: it runs
// commands in boxes, lists, stops, kills and removes them, shows their logs
// and metrics, runs the long-lived supervisor (boxsup supervise) and a
// self-contained walkthrough (boxsup demo). docs/CLI-GUIDE.md is its
// contract; docs/CLI.md is generated from the commands.
//
// Every command works the same with or without a running boxsup supervise:
// when one serves the home's control socket, commands go through it;
// otherwise they open the home's supervisor in-process for their duration.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
