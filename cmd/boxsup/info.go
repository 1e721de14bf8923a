package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// engineInfo is one engine in `boxsup info --format json`. The field names
// are part of the CLI contract (docs/CLI.md).
type engineInfo struct {
	Engine string `json:"engine"`
	Shim   string `json:"shim"`
	// Legacy: the shim predates --capabilities and honours no optional
	// field.
	Legacy bool            `json:"legacy,omitempty"`
	Fields []engineField   `json:"fields,omitempty"`
	Error  *messages.Error `json:"error,omitempty"` // the shim could not be asked
}

// engineField says whether an engine honours one optional spec field.
type engineField struct {
	Field    string   `json:"field"`
	Honoured bool     `json:"honoured"`
	Cgroup   []string `json:"cgroup,omitempty"` // controllers the supervisor applies it through
	How      string   `json:"how,omitempty"`
}

func (a *app) infoCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [--format table|json]",
		Short: "Show what each engine honours",
		Long: "Ask each engine's shim which optional spec fields it honours (SHIM --capabilities)\n" +
			"and print them. A box that sets a field its engine does not honour is refused.\n" +
			"A field honoured through a cgroup controller is refused too where boxsup cannot\n" +
			"apply that controller to the box's cgroup.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			info := a.engineInfo(cmd)
			if format == formatJSON {
				return writeJSON(a.stdout, []engineInfo{info})
			}
			return a.printEngineInfo(info)
		},
	}
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table|json")
	return cmd
}

// engineInfo asks the process engine's shim (--shim, else the one beside
// boxsup or on PATH) for its capabilities.
func (a *app) engineInfo(cmd *cobra.Command) engineInfo {
	info := engineInfo{Engine: string(messages.EngineProcess), Shim: a.shim}
	if info.Shim == "" {
		p, err := actors.FindShim()
		if err != nil {
			info.Error = messages.AsError(err)
			return info
		}
		info.Shim = p
	}
	caps, err := shimproc.Capabilities(cmd.Context(), info.Shim)
	if err != nil {
		info.Error = messages.AsError(err)
		return info
	}
	info.Legacy = caps.Legacy
	for _, f := range messages.OptionalFields() {
		fs, ok := caps.Honours(f)
		row := engineField{Field: f, Honoured: ok, How: fs.How}
		for _, c := range fs.Cgroup {
			row.Cgroup = append(row.Cgroup, string(c))
		}
		info.Fields = append(info.Fields, row)
	}
	return info
}

// printEngineInfo prints one engine as a header line and a table of fields.
func (a *app) printEngineInfo(info engineInfo) error {
	fmt.Fprintf(a.stdout, "engine %s: shim %s\n", info.Engine, info.Shim)
	switch {
	case info.Error != nil:
		return info.Error
	case info.Legacy:
		fmt.Fprintln(a.stdout, "the shim predates --capabilities: it honours no optional field")
		return nil
	}
	tw := newTable(a.stdout, "FIELD", "HONOURED", "HOW")
	for _, f := range info.Fields {
		honoured := "no"
		switch {
		case f.Honoured && len(f.Cgroup) > 0:
			honoured = "via the box cgroup (" + strings.Join(f.Cgroup, ", ") + ")"
		case f.Honoured:
			honoured = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Field, honoured, f.How)
	}
	return tw.Flush()
}
