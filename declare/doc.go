// Package declare reads a file that declares boxes (boxes.yaml), validates
// it into start requests, orders the boxes by their dependencies, computes
// a plan against the boxes that exist (create, replace, update, start,
// remove, unchanged) and applies it wave by wave.
//
// The file format is documented in docs/DECLARE.md. The file and every
// secret file it names are untrusted input: they must be regular files
// owned by the user or root and writable by nobody else, and a secret's
// value never appears in an error, a plan or a log.
//
// Apply records which boxes a file created with labels
// (LabelApplyID and the digests, see DeclaredBox.Labels), so a later apply removes
// only boxes this file created. A backend that cannot store labels, update
// a box in place or run health checks says so in its Capabilities, and
// Apply refuses a plan that needs what it lacks before it changes anything.
package declare
