package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/boxsup/boxsup/cluster/nodeloss"
	"github.com/boxsup/boxsup/cluster/placement"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// Claim records this session as the owner of a new box. An ID that has a
// record already, whoever owns it and whether or not its owner is alive, is
// messages.ErrAlreadyExists. A session whose lease is gone is ErrSessionOver.
func (s *Session) Claim(ctx context.Context, id string, failover bool, kind placement.Kind) (Record, error) {
	return s.ClaimBox(ctx, id, ClaimOptions{Failover: failover, Placement: kind})
}

// ClaimOptions describe a claimed box.
type ClaimOptions struct {
	Failover  bool
	Placement placement.Kind
	// Spec, when set, is written under specs/ID in the claim's transaction:
	// what another member starts after a take-over. It must hold no secret
	// in clear (etcd is not a secret store); the caller seals or refuses.
	Spec []byte
}

// ClaimBox is Claim with the box's spec kept beside its record.
func (s *Session) ClaimBox(ctx context.Context, id string, o ClaimOptions) (Record, error) {
	if err := layout.ValidateID(id); err != nil {
		return Record{}, err
	}
	rec := Record{Node: s.node, Lease: s.lease, Failover: o.Failover, Placement: o.Placement, Epoch: 1,
		ClaimedAt: time.Now().UTC(), Address: s.address}
	val, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	k := s.store.keys
	puts := []clientv3.Op{clientv3.OpPut(k.box(id), string(val))}
	if o.Spec != nil {
		puts = append(puts, clientv3.OpPut(k.spec(id), string(o.Spec)))
	} else {
		puts = append(puts, clientv3.OpDelete(k.spec(id))) // a leftover of an earlier box of that ID
	}
	resp, err := s.store.cli.Txn(ctx).
		If(
			clientv3.Compare(clientv3.CreateRevision(k.box(id)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(k.lease(s.lease)), ">", 0),
		).
		Then(puts...).
		Else(clientv3.OpGet(k.box(id)), clientv3.OpGet(k.lease(s.lease))).
		Commit()
	if err != nil {
		return Record{}, unavailable("claim "+id, err)
	}
	if resp.Succeeded {
		return rec, nil
	}
	if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
		owner := "another member"
		var r Record
		if json.Unmarshal(kvs[0].Value, &r) == nil {
			owner = "node " + r.Node
		}
		return Record{}, messages.Errorf(messages.ErrAlreadyExists, "box %q is owned by %s", id, owner)
	}
	return Record{}, fmt.Errorf("%w: claim %s", ErrSessionOver, id)
}

// Spec returns the spec kept for box id (ClaimOptions.Spec), or
// messages.ErrNotFound.
func (s *Store) Spec(ctx context.Context, id string) ([]byte, error) {
	if err := layout.ValidateID(id); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.keys.spec(id))
	if err != nil {
		return nil, unavailable("read spec "+id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, messages.Errorf(messages.ErrNotFound, "box %q has no spec in the cluster", id)
	}
	return resp.Kvs[0].Value, nil
}

// PutSpec replaces the spec kept for a box this session owns (after an
// update of its settings). A record owned by another node or session is
// ErrNotOwner.
func (s *Session) PutSpec(ctx context.Context, id string, spec []byte) error {
	o, err := s.ownedHere(ctx, id)
	if err != nil {
		return err
	}
	return s.store.commitUnchanged(ctx, o, "write spec", clientv3.OpPut(s.store.keys.spec(id), string(spec)))
}

// Release deletes the record of a box this session owns (after the box was
// removed). A record owned by another node or session is ErrNotOwner.
func (s *Session) Release(ctx context.Context, id string) error {
	o, err := s.ownedHere(ctx, id)
	if err != nil {
		return err
	}
	return s.store.commitUnchanged(ctx, o, "release",
		clientv3.OpDelete(s.store.keys.box(id)), clientv3.OpDelete(s.store.keys.spec(id)))
}

// MarkFenced records, on each of this node's records among ids (of this
// session or an earlier one), that the box was fenced: stopped here, never
// to be started here again. Records of other nodes are left alone.
func (s *Session) MarkFenced(ctx context.Context, ids []string) error {
	for _, id := range ids {
		o, err := s.store.Owner(ctx, id)
		if errors.Is(err, messages.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if o.Record.Node != s.node || o.Record.Fenced {
			continue
		}
		rec := o.Record
		rec.Fenced = true
		val, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := s.store.commitUnchanged(ctx, o, "mark fenced", clientv3.OpPut(s.store.keys.box(id), string(val))); err != nil {
			return err
		}
	}
	return nil
}

// ownedHere reads id's record: ErrNotOwner unless this session (this node
// under this lease) holds it.
func (s *Session) ownedHere(ctx context.Context, id string) (Owned, error) {
	o, err := s.store.Owner(ctx, id)
	if err != nil {
		return Owned{}, err
	}
	if o.Record.Node != s.node || o.Record.Lease != s.lease {
		return Owned{}, fmt.Errorf("%w: %s is owned by %s under lease %s", ErrNotOwner, id, o.Record.Node, o.Record.Lease)
	}
	return o, nil
}

// commitUnchanged applies ops only if the box's record is still the one
// read (its mod revision): ErrChanged when it moved on meanwhile, and
// ErrUnavailable, naming what (op) was tried, when etcd cannot answer.
func (s *Store) commitUnchanged(ctx context.Context, o Owned, op string, ops ...clientv3.Op) error {
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.keys.box(o.ID)), "=", o.Revision)).
		Then(ops...).
		Commit()
	if err != nil {
		return unavailable(op+" "+o.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s", ErrChanged, o.ID)
	}
	return nil
}

// Owned is a record as read, with what a take-over needs to compare.
type Owned struct {
	ID       string
	Record   Record
	Revision int64 // the record's mod revision when read
	// OwnerAlive reports whether the record's lease existed when read.
	OwnerAlive bool
}

// Owner reads one box's record; messages.ErrNotFound when there is none.
func (s *Store) Owner(ctx context.Context, id string) (Owned, error) {
	if err := layout.ValidateID(id); err != nil {
		return Owned{}, err
	}
	list, err := s.read(ctx, s.keys.box(id), false)
	if err != nil {
		return Owned{}, err
	}
	if len(list) == 0 {
		return Owned{}, messages.Errorf(messages.ErrNotFound, "box %q has no owner record", id)
	}
	return list[0], nil
}

// List reads every box record, sorted by ID.
func (s *Store) List(ctx context.Context) ([]Owned, error) {
	return s.read(ctx, s.keys.boxes(), true)
}

// read gets records and, in the same revision, the lease sentinels, so that
// OwnerAlive is consistent with the record.
func (s *Store) read(ctx context.Context, key string, prefix bool) ([]Owned, error) {
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	}
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(key, opts...),
		clientv3.OpGet(s.keys.prefix+"leases/", clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, unavailable("read records", err)
	}
	alive := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().GetKvs() {
		alive[string(kv.Key)] = true
	}
	var out []Owned
	for _, kv := range resp.Responses[0].GetResponseRange().GetKvs() {
		var r Record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, messages.Errorf(messages.ErrCorruptFile, "etcd key %s: %v", kv.Key, err)
		}
		out = append(out, Owned{
			ID:         strings.TrimPrefix(string(kv.Key), s.keys.boxes()),
			Record:     r,
			Revision:   kv.ModRevision,
			OwnerAlive: alive[s.keys.lease(r.Lease)],
		})
	}
	return out, nil
}

// Members lists the registered members (those whose lease is alive).
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	resp, err := s.cli.Get(ctx, s.keys.members(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, unavailable("list members", err)
	}
	out := make([]Member, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, messages.Errorf(messages.ErrCorruptFile, "etcd key %s: %v", kv.Key, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// TakeOver makes this session the owner of a box whose owner was lost, in
// one transaction that requires: the record unchanged since seen was read
// (else ErrChanged), the old owner's lease gone (else ErrOwnerAlive), and
// this session's lease alive (else ErrSessionOver). Only a box that opted
// in to fail-over and is not pinned to its node may be taken
// (ErrNotEligible). The caller must also have let the fail-over delay pass
// (package nodeloss): etcd cannot check time.
func (s *Session) TakeOver(ctx context.Context, seen Owned) (Record, error) {
	if !nodeloss.Eligible(seen.Record.Failover, seen.Record.Placement) {
		return Record{}, fmt.Errorf("%w: %s (failover=%v, placement=%q)", ErrNotEligible, seen.ID, seen.Record.Failover, seen.Record.Placement)
	}
	return s.rewrite(ctx, seen, seen.Record.Epoch+1, "take over")
}

// Reclaim re-points this node's records whose session is over (a previous
// run of this supervisor) to the current session, so that a restarted
// supervisor keeps its boxes. keep chooses which: it must refuse the boxes
// this node fenced, so that their fail-over can proceed elsewhere (nil keeps
// all). It returns the records it now holds; a record that another member
// took over meanwhile is not touched and not returned.
func (s *Session) Reclaim(ctx context.Context, keep func(Owned) bool) ([]Owned, error) {
	all, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Owned
	for _, o := range all {
		if o.Record.Node != s.node {
			continue
		}
		if o.Record.Lease == s.lease {
			out = append(out, o)
			continue
		}
		if keep != nil && !keep(o) {
			continue
		}
		rec, err := s.rewrite(ctx, o, o.Record.Epoch, "reclaim")
		if err != nil {
			return out, err
		}
		o.Record, o.OwnerAlive = rec, true
		out = append(out, o)
	}
	return out, nil
}

// rewrite points a record at this session if it is unchanged and its lease
// is gone.
func (s *Session) rewrite(ctx context.Context, seen Owned, epoch uint64, op string) (Record, error) {
	rec := seen.Record
	rec.Node, rec.Lease, rec.Epoch, rec.ClaimedAt, rec.Address = s.node, s.lease, epoch, time.Now().UTC(), s.address
	rec.Fenced = false
	val, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	k := s.store.keys
	resp, err := s.store.cli.Txn(ctx).
		If(
			clientv3.Compare(clientv3.ModRevision(k.box(seen.ID)), "=", seen.Revision),
			clientv3.Compare(clientv3.CreateRevision(k.lease(seen.Record.Lease)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(k.lease(s.lease)), ">", 0),
		).
		Then(clientv3.OpPut(k.box(seen.ID), string(val))).
		Else(
			clientv3.OpGet(k.box(seen.ID), clientv3.WithKeysOnly()),
			clientv3.OpGet(k.lease(seen.Record.Lease), clientv3.WithKeysOnly()),
			clientv3.OpGet(k.lease(s.lease), clientv3.WithKeysOnly()),
		).
		Commit()
	if err != nil {
		return Record{}, unavailable(op+" "+seen.ID, err)
	}
	if resp.Succeeded {
		return rec, nil
	}
	box := resp.Responses[0].GetResponseRange().GetKvs()
	switch {
	case len(box) != 1 || box[0].ModRevision != seen.Revision:
		return Record{}, fmt.Errorf("%w: %s %s", ErrChanged, op, seen.ID)
	case len(resp.Responses[1].GetResponseRange().GetKvs()) != 0:
		return Record{}, fmt.Errorf("%w: %s %s: lease %s of node %s", ErrOwnerAlive, op, seen.ID, seen.Record.Lease, seen.Record.Node)
	}
	return Record{}, fmt.Errorf("%w: %s %s", ErrSessionOver, op, seen.ID)
}
