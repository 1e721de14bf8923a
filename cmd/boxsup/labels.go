package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// labelsCellWidth bounds the LABELS column of ps: longer sets are cut with
// "..." (the JSON has them whole).
const labelsCellWidth = 40

// parseLabelFlags turns repeated KEY=VALUE flags into a label set,
// validated; nil when none is given. A key given twice is refused rather
// than one of its values dropped.
func parseLabelFlags(flag string, entries []string) (map[string]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	set := make(map[string]string, len(entries))
	for _, e := range entries {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, messages.Errorf(messages.ErrBadSpec, "%s %q: want KEY=VALUE", flag, e)
		}
		if _, dup := set[k]; dup {
			return nil, messages.Errorf(messages.ErrBadSpec, "%s: label %q given twice", flag, k)
		}
		set[k] = v
	}
	if err := labels.Validate(set); err != nil {
		return nil, err
	}
	return set, nil
}

// labelsText renders a label set compactly, sorted by key: app=web,tier=db;
// "-" for none. width > 0 cuts it to at most width characters.
func labelsText(set map[string]string, width int) string {
	if len(set) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(set))
	for _, k := range slices.Sorted(maps.Keys(set)) {
		parts = append(parts, k+"="+set[k])
	}
	s := strings.Join(parts, ",")
	if width > 3 && len(s) > width {
		s = s[:width-3] + "..."
	}
	return s
}
