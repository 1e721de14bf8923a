package declare

import (
	"maps"
	"slices"

	"github.com/boxsup/boxsup/messages"
)

// Existing is a box as the backend reports it.
type Existing struct {
	ID     string
	State  messages.BoxState
	Labels map[string]string
}

// Action is what a plan does to one box.
type Action string

// Plan actions, in the order a rendered plan lists their counts.
const (
	// ActionCreate: the box is declared and does not exist.
	ActionCreate Action = "create"
	// ActionReplace: the box exists, created by this file, and what only
	// a new process can change differs (LabelSpecDigest): it is stopped,
	// removed and created again.
	ActionReplace Action = "replace"
	// ActionUpdate: the box exists, created by this file, and only its
	// restart policy, stop timeout or labels differ (LabelConfigDigest): it
	// is updated in place, without touching its process, and then started
	// again if it was at rest (exited or failed), as ActionStart would.
	ActionUpdate Action = "update"
	// ActionStart: the box exists as declared but is at rest (exited or
	// failed): it is started again.
	ActionStart Action = "start"
	// ActionRemove: the box was created by this file and is no longer
	// declared: it is stopped and removed.
	ActionRemove Action = "remove"
	// ActionNone: the box exists as declared and is live.
	ActionNone Action = "unchanged"
)

// Change is one box's part of a plan.
type Change struct {
	Action Action
	ID     string
	// Declared is the declaration; nil for ActionRemove.
	Declared *DeclaredBox
	// Current is the box as it is; nil for ActionCreate.
	Current *Existing
	// Wave is the box's start wave (declared boxes only).
	Wave int
}

// Plan is what Apply does to make the boxes match a file.
type Plan struct {
	// Manifest is the file the plan was computed from.
	Manifest *BoxesFile
	// Changes lists the declared boxes in start order, then the boxes to
	// remove sorted by ID.
	Changes []Change
}

// Count returns how many changes have action a.
func (p *Plan) Count(a Action) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return p.Count(ActionNone) == len(p.Changes) }

// ComputePlan compares the file with the boxes that exist. A declared box
// that exists but was not created by this file (no LabelApplyID with the
// file's apply ID) is a conflict: the plan is refused with
// messages.ErrAlreadyExists rather than take the box over.
func ComputePlan(f *BoxesFile, current []Existing) (*Plan, error) {
	byID := make(map[string]*Existing, len(current))
	for i := range current {
		byID[current[i].ID] = &current[i]
	}
	p := &Plan{Manifest: f}
	var conflicts []string
	for w, wave := range f.Waves {
		for _, i := range wave {
			b := f.Declared[i]
			c := Change{ID: b.ID(), Declared: b, Wave: w}
			cur := byID[b.ID()]
			switch {
			case cur == nil:
				c.Action = ActionCreate
			case cur.Labels[LabelApplyID] != f.ApplyID:
				conflicts = append(conflicts, b.ID())
				continue
			case cur.Labels[LabelSpecDigest] != b.SpecDigest:
				c.Action = ActionReplace
			case cur.Labels[LabelConfigDigest] != b.ConfigDigest:
				c.Action = ActionUpdate
			case cur.State.AtRest():
				c.Action = ActionStart
			default:
				c.Action = ActionNone
			}
			c.Current = cur
			p.Changes = append(p.Changes, c)
		}
	}
	if len(conflicts) > 0 {
		return nil, messages.Errorf(messages.ErrAlreadyExists,
			"%s declares %v, which exist but were not created by this file (label %s=%s): remove them, or rename them in the file",
			f.Path, conflicts, LabelApplyID, f.ApplyID)
	}
	declared := map[string]bool{}
	for _, b := range f.Declared {
		declared[b.ID()] = true
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		cur := byID[id]
		if !declared[id] && cur.Labels[LabelApplyID] == f.ApplyID {
			p.Changes = append(p.Changes, Change{Action: ActionRemove, ID: id, Current: cur, Wave: -1})
		}
	}
	return p, nil
}
