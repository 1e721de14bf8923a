package lifecycle

import (
	"fmt"
	"slices"
	"strings"
)

// Diagram renders the lifecycle table for docs/ARCHITECTURE.md: a Mermaid
// state diagram of every transition, then the whole table (including the
// rows that stay in their phase) as a Markdown table.
func Diagram() string {
	var b strings.Builder
	b.WriteString("```mermaid\nstateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s: new box\n    [*] --> %s: existing box\n", Empty, Loading)
	type edge struct{ from, to Phase }
	labels := map[edge][]string{}
	var order []edge
	for _, r := range table {
		for _, from := range r.from {
			for _, to := range r.to {
				e := edge{from, to}
				if _, seen := labels[e]; !seen {
					order = append(order, e)
				}
				if !slices.Contains(labels[e], r.on.String()) {
					labels[e] = append(labels[e], r.on.String())
				}
			}
		}
	}
	slices.SortStableFunc(order, func(a, b edge) int {
		if a.from != b.from {
			return int(a.from) - int(b.from)
		}
		return int(a.to) - int(b.to)
	})
	for _, e := range order {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", mermaidName(e.from), mermaidName(e.to), strings.Join(labels[e], ", "))
	}
	fmt.Fprintf(&b, "    %s --> [*]\n```\n\n", Gone)

	b.WriteString("| in | on | may lead to | what happens |\n|---|---|---|---|\n")
	for _, r := range table {
		to := "stays"
		if len(r.to) > 0 {
			to = phaseList(r.to) + " (or stays)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", phaseList(r.from), r.on, to, r.what)
	}
	return b.String()
}

// mermaidName avoids Mermaid's keywords and punctuation.
func mermaidName(p Phase) string { return strings.ReplaceAll(p.String(), "-", "_") }

func phaseList(ps []Phase) string {
	if len(ps) == int(numPhases) {
		return "any"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	return strings.Join(names, ", ")
}
