package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/layout"
)

// completionCommand replaces cobra's default completion command: boxsup
// runs on Linux, so bash, zsh and fish only, with install instructions in
// its help (and so in docs/CLI.md).
func (a *app) completionCommand(root *cobra.Command) *cobra.Command {
	root.CompletionOptions.DisableDefaultCmd = true
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: "Print a script that makes SHELL complete boxsup's commands, flags, flag values and box\n" +
			"IDs. Box IDs are read from the home's directory (--home, else the default home); nothing\n" +
			"is opened or locked.\n\n" +
			"  bash:  boxsup completion bash > /etc/bash_completion.d/boxsup   (needs bash-completion)\n" +
			"         or, for the current shell: source <(boxsup completion bash)\n" +
			"  zsh:   boxsup completion zsh > \"${fpath[1]}/_boxsup\"   (then start a new shell;\n" +
			"         compinit must be enabled: autoload -U compinit; compinit)\n" +
			"  fish:  boxsup completion fish > ~/.config/fish/completions/boxsup.fish",
		Args:                  exactArgs(1),
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			case "fish":
				return root.GenFishCompletion(a.stdout, true)
			}
			return usageError(fmt.Errorf("completion %q: want bash, zsh or fish", args[0]))
		},
	}
}

// boxIDCommands take box IDs as arguments: their arguments complete to the
// home's box IDs.
var boxIDCommands = []string{"stop", "start", "kill", "rm", "logs", "metrics"}

// addCompletions wires argument and flag-value completion into the command
// tree (done here, so that the commands' own files stay about the commands).
func (a *app) addCompletions(root *cobra.Command) {
	for _, c := range root.Commands() {
		if slices.Contains(boxIDCommands, c.Name()) {
			c.ValidArgsFunction = a.completeBoxIDs
		}
	}
	values := map[string][]string{
		"log-level":  {"trace", "debug", "info", "warn", "error"},
		"log-format": {"text", "json"},
		"restart":    {"no", "on-failure", "always"},
		"format":     {formatTable, formatJSON},
		"signal":     {"HUP", "INT", "QUIT", "TERM", "KILL", "USR1", "USR2"},
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, vals := range values {
			if c.Flags().Lookup(name) != nil || c.PersistentFlags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeBoxIDs lists the home's box IDs not already on the command line.
// It only reads the home's boxes directory: completing must never open,
// lock or adopt anything.
func (a *app) completeBoxIDs(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	home := a.home
	if home == "" {
		h, err := layout.ResolveHome()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		home = h
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids, err := (&layout.Home{Root: abs}).BoxIDs()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, id := range ids {
		if strings.HasPrefix(id, toComplete) && !slices.Contains(args, id) {
			out = append(out, id)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
