package ownership

import (
	"errors"
	"fmt"
)

// The errors of this package that are not messages errors. Claims of a
// taken ID, and joins under a name in use, are messages.ErrAlreadyExists.
var (
	// ErrUnavailable: etcd could not be reached or did not answer in time.
	// Nothing was decided; the caller must refuse what needed ownership.
	ErrUnavailable = errors.New("ownership: etcd unavailable")
	// ErrOwnerAlive: a take-over was refused because the owner's lease
	// still exists.
	ErrOwnerAlive = errors.New("ownership: the owner's lease is still alive")
	// ErrChanged: the record changed since it was read (another member won
	// a race, or the owner came back); read it again.
	ErrChanged = errors.New("ownership: the record changed since it was read")
	// ErrNotOwner: this session does not own the box.
	ErrNotOwner = errors.New("ownership: not the owner")
	// ErrSessionOver: this session's lease is gone; join again.
	ErrSessionOver = errors.New("ownership: session lease is gone")
	// ErrNotEligible: the box does not allow fail-over (not opted in, or
	// pinned to its node).
	ErrNotEligible = errors.New("ownership: box is not eligible for fail-over")
)

// unavailable wraps an etcd error, keeping its chain.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
