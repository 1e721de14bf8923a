package declare

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// Render writes the plan for people, in the manner of terraform plan: one
// block per box that changes, its attributes for those created or
// replaced, and a summary line. Secret values are never shown, only where
// they come from.
func (p *Plan) Render(w io.Writer) error {
	var sb strings.Builder
	if p.Empty() {
		fmt.Fprintf(&sb, "No changes. The %d boxes of %s are as declared.\n", len(p.Changes), p.Manifest.Path)
		_, err := io.WriteString(w, sb.String())
		return err
	}
	fmt.Fprintf(&sb, "boxsup will perform these actions to match %s:\n", p.Manifest.Path)
	for _, c := range p.Changes {
		switch c.Action {
		case ActionCreate:
			fmt.Fprintf(&sb, "\n  # box %q will be created (wave %d)\n", c.ID, c.Wave+1)
			writeBox(&sb, "  + ", "+", c.Declared)
		case ActionReplace:
			fmt.Fprintf(&sb, "\n  # box %q must be replaced (wave %d): its command, environment, secrets, work directory,\n"+
				"  # engine, resources, ready timeout or health check changed; it is stopped, removed and created again\n", c.ID, c.Wave+1)
			writeBox(&sb, "-/+ ", "+", c.Declared)
		case ActionUpdate:
			fmt.Fprintf(&sb, "\n  # box %q will be updated in place: its restart policy, stop timeout or labels changed\n", c.ID)
			writeConfig(&sb, "  ~ ", "~", c.Declared)
		case ActionStart:
			fmt.Fprintf(&sb, "\n  # box %q will be started again (wave %d): it is %s\n", c.ID, c.Wave+1, c.Current.State)
			fmt.Fprintf(&sb, "  > box %q\n", c.ID)
		case ActionRemove:
			fmt.Fprintf(&sb, "\n  # box %q will be stopped and removed: the file no longer declares it\n", c.ID)
			fmt.Fprintf(&sb, "  - box %q\n", c.ID)
		}
	}
	fmt.Fprintf(&sb, "\nPlan: %d to create, %d to replace, %d to update, %d to start, %d to remove, %d unchanged.\n",
		p.Count(ActionCreate), p.Count(ActionReplace), p.Count(ActionUpdate), p.Count(ActionStart),
		p.Count(ActionRemove), p.Count(ActionNone))
	_, err := io.WriteString(w, sb.String())
	return err
}

// attr is one line of a box block.
type attr struct{ name, value string }

// writeBox writes every declared attribute of b.
func writeBox(sb *strings.Builder, head, mark string, b *DeclaredBox) {
	s := b.Start
	e := s.Spec.GuestEntrypoint
	attrs := []attr{{"command", quoteList(append([]string{e.Executable}, e.Args...))}}
	if s.Spec.Engine != "process" {
		attrs = append(attrs, attr{"engine", strconv.Quote(string(s.Spec.Engine))})
	}
	var env []string
	for _, kv := range e.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, k+" = "+strconv.Quote(v))
	}
	attrs = append(attrs, attr{"env", "{ " + strings.Join(env, ", ") + " }"})
	if len(b.Secrets) > 0 {
		var sec []string
		for _, src := range b.Secrets {
			sec = append(sec, src.Name+" = (sensitive, from "+src.From+")")
		}
		attrs = append(attrs, attr{"secrets", "{ " + strings.Join(sec, ", ") + " }"})
	}
	attrs = append(attrs, attr{"work_dir", strconv.Quote(e.WorkDir)})
	if s.Spec.CPUs != 0 {
		attrs = append(attrs, attr{"cpus", strconv.Itoa(int(s.Spec.CPUs))})
	}
	if s.Spec.MemoryMiB != 0 {
		attrs = append(attrs, attr{"memory_mib", strconv.Itoa(int(s.Spec.MemoryMiB))})
	}
	if s.ReadyTimeout != 0 {
		attrs = append(attrs, attr{"ready_timeout", strconv.Quote(s.ReadyTimeout.String())})
	}
	attrs = append(attrs, configAttrs(b)...)
	if len(b.DependsOn) > 0 {
		var deps []string
		for _, d := range b.DependsOn {
			deps = append(deps, strconv.Quote(d.ID)+" ("+string(d.Condition)+")")
		}
		attrs = append(attrs, attr{"depends_on", "[" + strings.Join(deps, ", ") + "]"})
	}
	if hc := b.HealthCheck; hc != nil {
		attrs = append(attrs, attr{"healthcheck", describeHealthCheck(hc)})
	}
	writeBlock(sb, head, mark, b.ID(), attrs)
}

// writeConfig writes the attributes an update in place changes.
func writeConfig(sb *strings.Builder, head, mark string, b *DeclaredBox) {
	writeBlock(sb, head, mark, b.ID(), configAttrs(b))
}

func configAttrs(b *DeclaredBox) []attr {
	s := b.Start
	var out []attr
	mode := string(s.Restart.Mode)
	if mode == "" {
		mode = "no"
	}
	out = append(out, attr{"restart", strconv.Quote(mode)})
	if s.Restart.MaxRestarts != 0 {
		out = append(out, attr{"max_restarts", strconv.Itoa(s.Restart.MaxRestarts)})
	}
	if s.StopTimeout != 0 {
		out = append(out, attr{"stop_timeout", strconv.Quote(s.StopTimeout.String())})
	}
	if len(b.UserLabels) > 0 {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(b.UserLabels)) {
			ls = append(ls, k+" = "+strconv.Quote(b.UserLabels[k]))
		}
		out = append(out, attr{"labels", "{ " + strings.Join(ls, ", ") + " }"})
	}
	return out
}

func writeBlock(sb *strings.Builder, head, mark, id string, attrs []attr) {
	width := 0
	for _, a := range attrs {
		width = max(width, len(a.name))
	}
	fmt.Fprintf(sb, "%sbox %q {\n", head, id)
	for _, a := range attrs {
		fmt.Fprintf(sb, "      %s %-*s = %s\n", mark, width, a.name, a.value)
	}
	sb.WriteString("    }\n")
}

func describeHealthCheck(hc *messages.HealthCheck) string {
	var probe string
	switch {
	case len(hc.Exec) > 0:
		probe = "exec " + quoteList(hc.Exec)
	case hc.TCP != "":
		probe = "tcp " + hc.TCP
	case hc.HTTP != "":
		probe = "http " + hc.HTTP
	default:
		probe = "unix " + hc.Unix
	}
	d := hc.WithDefaults()
	return fmt.Sprintf("{ %s, interval %v, timeout %v, retries %d, start_period %v }",
		probe, d.Interval, d.Timeout, d.Retries, d.StartPeriod)
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
