package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cliDocHeader opens docs/CLI.md. The page is generated from the commands
// (TestCLIDocIsCurrent fails when it differs); the contract that is not
// about one command lives in the hand-written CLI-GUIDE.md.
const cliDocHeader = `<!-- Generated from boxsup's commands by ` + "`make docs`" + `: do not edit; edit the commands' help. -->
# boxsup command reference

This page is generated from the help of the ` + "`boxsup`" + ` commands themselves (` + "`boxsup CMD --help`" + `
prints the same text), so the two cannot drift: a test fails when this file is not what the
commands say. How commands reach the supervisor, the home's trust checks, exit codes, output
fields, the control protocol, metrics and running under systemd are in the hand-written
[CLI-GUIDE.md](CLI-GUIDE.md); the boxes file of ` + "`apply`" + ` in [DECLARE.md](DECLARE.md); the
metric series in [METRICS.md](METRICS.md).
`

// writeCLIDoc writes the command reference of root as markdown: the
// commands, the global flags, then one section per command with its usage,
// description, flags and subcommands.
func writeCLIDoc(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	b.WriteString(cliDocHeader)
	cmds := documented(root)
	b.WriteString("\n## Commands\n\n| command | what it does |\n|---|---|\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", c.CommandPath(), anchor(c.CommandPath()), c.Short)
	}
	b.WriteString("\n## Global flags\n\nEvery command takes these.\n\n")
	writeFlagTable(&b, root.PersistentFlags())
	for _, c := range cmds {
		fmt.Fprintf(&b, "\n## %s\n\n%s.\n\n```\n%s\n```\n", c.CommandPath(), c.Short, c.UseLine())
		if c.Long != "" {
			b.WriteString("\n")
			writeHelpText(&b, c.Long)
		}
		if c.HasAvailableLocalFlags() {
			b.WriteString("\nFlags:\n\n")
			writeFlagTable(&b, c.LocalNonPersistentFlags())
		}
		if subs := documented(c); len(subs) > 0 && c != root {
			b.WriteString("\nSubcommands: ")
			for i, s := range subs {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "[`%s`](#%s)", s.Name(), anchor(s.CommandPath()))
			}
			b.WriteString(".\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// documented returns c's subcommands worth a section: not hidden, not
// cobra's help, recursively, in name order (cobra sorts them).
func documented(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.Name() == "help" {
			continue
		}
		out = append(out, sub)
		out = append(out, documented(sub)...)
	}
	return out
}

// anchor is GitHub's anchor for a heading: lower case, spaces to dashes.
func anchor(heading string) string {
	return strings.ReplaceAll(strings.ToLower(heading), " ", "-")
}

// writeHelpText renders help text as markdown: lines indented by two or
// more spaces become code blocks (examples), other lines stay as they are
// (markdown joins the hard-wrapped lines of a paragraph).
func writeHelpText(b *strings.Builder, text string) {
	inCode := false
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		code := strings.HasPrefix(line, "  ")
		switch {
		case code && !inCode:
			b.WriteString("```\n")
		case !code && inCode:
			b.WriteString("```\n")
		}
		inCode = code
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if inCode {
		b.WriteString("```\n")
	}
}

// writeFlagTable writes a table of flags: names, default, meaning.
func writeFlagTable(b *strings.Builder, fs *pflag.FlagSet) {
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "`--" + f.Name
		if f.Value.Type() != "bool" {
			name += " " + strings.ToUpper(flagValueName(f))
		}
		name += "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := f.DefValue
		switch {
		case f.Value.Type() == "bool" && def == "false", def == "", def == "[]":
			def = ""
		default:
			def = "`" + def + "`"
		}
		usage := strings.ReplaceAll(f.Usage, "|", "\\|")
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, def, usage)
	})
}

// flagValueName names a flag's value: the back-quoted word of its usage
// (pflag's convention), else its type.
func flagValueName(f *pflag.Flag) string {
	name, _ := pflag.UnquoteUsage(f)
	switch name {
	case "", "stringArray":
		return "value"
	}
	return name
}
