package placement

import (
	"errors"
	"fmt"
	"testing"
)

func TestChoose(t *testing.T) {
	t.Parallel()
	members := []Member{
		{Node: "a", Boxes: 3, FreeMemory: 8 << 30},
		{Node: "b", Boxes: 1, FreeMemory: 1 << 30},
		{Node: "c", Boxes: 1, FreeMemory: 4 << 30},
		{Node: "d", Boxes: 1, FreeMemory: 4 << 30},
	}
	cases := []struct {
		name    string
		p       Placement
		exclude []string
		want    string
		err     error
	}{
		{"named node", Placement{Kind: Node, Node: "a"}, nil, "a", nil},
		{"named node not live", Placement{Kind: Node, Node: "z"}, nil, "", ErrNoMember},
		{"named node excluded", Placement{Kind: Node, Node: "a"}, []string{"a"}, "", ErrNoMember},
		{"spread: fewest boxes, then most memory, then name", Placement{Kind: Spread}, nil, "c", nil},
		{"spread without c", Placement{Kind: Spread}, []string{"c"}, "d", nil},
		{"spread without c and d", Placement{Kind: Spread}, []string{"c", "d"}, "b", nil},
		{"spread, nobody left", Placement{Kind: Spread}, []string{"a", "b", "c", "d"}, "", ErrNoMember},
		{"hash, nobody left", Placement{Kind: Hash}, []string{"a", "b", "c", "d"}, "", ErrNoMember},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Choose(c.p, "web", members, c.exclude...)
			if !errors.Is(err, c.err) || got != c.want {
				t.Fatalf("Choose = %q, %v; want %q, %v", got, err, c.want, c.err)
			}
		})
	}
}

// TestSpreadPlacesEvenly: placing boxes one by one, each counted on its
// member, gives equal counts, as the 30-box test expects.
func TestSpreadPlacesEvenly(t *testing.T) {
	t.Parallel()
	members := []Member{{Node: "a", FreeMemory: 1}, {Node: "b", FreeMemory: 3}, {Node: "c", FreeMemory: 2}}
	for i := 0; i < 30; i++ {
		node, err := Choose(Placement{Kind: Spread}, fmt.Sprint("box", i), members)
		if err != nil {
			t.Fatal(err)
		}
		for j := range members {
			if members[j].Node == node {
				members[j].Boxes++
			}
		}
	}
	for _, m := range members {
		if m.Boxes != 10 {
			t.Fatalf("uneven: %+v", members)
		}
	}
}

// TestHashIsStableAndMovesOnlyTheLostMembersBoxes is the rendezvous
// property: the order of the member list does not matter, the load is
// roughly even, and removing a member reassigns only its own boxes.
func TestHashIsStableAndMovesOnlyTheLostMembersBoxes(t *testing.T) {
	t.Parallel()
	members := []Member{{Node: "a"}, {Node: "b"}, {Node: "c"}}
	reversed := []Member{{Node: "c"}, {Node: "b"}, {Node: "a"}}
	const n = 3000
	count := map[string]int{}
	before := map[string]string{}
	for i := 0; i < n; i++ {
		id := fmt.Sprint("box-", i)
		x, _ := Choose(Placement{Kind: Hash}, id, members)
		y, _ := Choose(Placement{Kind: Hash}, id, reversed)
		if x != y {
			t.Fatalf("%s: %s vs %s depending on member order", id, x, y)
		}
		before[id] = x
		count[x]++
	}
	for node, c := range count {
		if c < n/3*8/10 || c > n/3*12/10 {
			t.Fatalf("member %s got %d of %d boxes: %v", node, c, n, count)
		}
	}
	for id, was := range before {
		now, _ := Choose(Placement{Kind: Hash}, id, members, "b")
		if was != "b" && now != was {
			t.Fatalf("%s moved from %s to %s although %s is still live", id, was, now, was)
		}
		if now == "b" {
			t.Fatalf("%s placed on an excluded member", id)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	good := map[[2]string]Placement{
		{"", "n1"}:     {Kind: Node, Node: "n1"},
		{"node", "n1"}: {Kind: Node, Node: "n1"},
		{"spread", ""}: {Kind: Spread},
		{"hash", ""}:   {Kind: Hash},
	}
	for in, want := range good {
		if got, err := Parse(in[0], in[1]); err != nil || got != want {
			t.Errorf("Parse(%q, %q) = %+v, %v", in[0], in[1], got, err)
		}
	}
	for _, in := range [][2]string{{"", ""}, {"node", ""}, {"spread", "n1"}, {"random", ""}} {
		if _, err := Parse(in[0], in[1]); err == nil {
			t.Errorf("Parse(%q, %q) accepted", in[0], in[1])
		}
	}
}
