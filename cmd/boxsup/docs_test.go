package main

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

// updateDocs rewrites docs/CLI.md from the commands: `make docs`.
var updateDocs = flag.Bool("update-docs", false, "rewrite docs/CLI.md from the commands")

const cliDocPath = "../../docs/CLI.md"

// TestCLIDocIsCurrent fails when docs/CLI.md is not what the commands
// generate, so the reference and the help cannot drift.
func TestCLIDocIsCurrent(t *testing.T) {
	var buf bytes.Buffer
	a := &app{stdout: &buf, stderr: &buf}
	if err := writeCLIDoc(&buf, a.rootCommand()); err != nil {
		t.Fatal(err)
	}
	if *updateDocs {
		if err := os.WriteFile(cliDocPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		t.Fatalf("docs/CLI.md is not what the commands generate: run `make docs` and commit the result (a command's help changed, or someone edited the generated file)")
	}
}
