// Package ownership records in etcd which host owns each box of a cluster,
// so that a box ID is unique cluster-wide and a box is never owned twice.
//
// Every member holds one etcd lease for its whole session (Join). Under it
// live two keys that vanish together when the lease expires or is revoked:
// the member's registration and a sentinel named after the lease itself.
// Box records are NOT attached to the lease: they outlive their owner's
// session, so that a box whose host disappeared stays taken (its ID cannot
// be claimed again by an unrelated start) until its owner comes back
// (Reclaim) or another member takes it over (TakeOver).
//
// The keys, under /boxsup/CLUSTER/:
//
//	members/NODE       {"node","lease","joined_at"}      attached to the lease
//	leases/LEASE       "NODE"                            attached to the lease
//	boxes/ID           {"node","lease","failover",...}   not attached
//	specs/ID           the box's StartBox (fail-over boxes), not attached
//
// A claim is one transaction: create boxes/ID if absent, else
// ErrAlreadyExists. A take-over is one transaction that requires the record
// to be unchanged since it was read and the old lease's sentinel to be gone,
// so the old owner's session is over for etcd and a racing member loses. The
// timing that makes a take-over safe (fencing on the old host first) is
// package nodeloss's job; this package enforces the facts etcd can check.
package ownership
