// Package labels validates box labels and parses and matches label
// selectors, in the syntax and with the meaning of Kubernetes' label
// selectors, so that an operator's habits carry over:
//
//	app=web,tier!=db          equality and inequality, comma means AND
//	env in (prod,staging)     set membership
//	env notin (dev)           set exclusion
//	canary                    the key exists (any value)
//	!canary                   the key does not exist
//	replicas>2                an integer value above (or, with <, below)
//
// A negative requirement (!=, notin, !key) also matches a box that has no
// such label, as in Kubernetes. The empty selector matches every box.
//
// Keys and values follow Kubernetes' rules (see ValidateKey and
// ValidateValue); an invalid one is refused with messages.ErrBadSpec, never
// truncated or ignored. The package does no I/O.
package labels
