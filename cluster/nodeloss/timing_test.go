package nodeloss

import (
	"testing"
	"time"

	"github.com/boxsup/boxsup/cluster/placement"
)

const s = time.Second

func TestTimingValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		t    Timing
		ok   bool
	}{
		{"defaults", Timing{}.WithDefaults(), true},
		{"just above the bound", Timing{LeaseTTL: 5 * s, FenceAfter: 10 * s, FailoverAfter: 15*s + 1}, true},
		{"equal to fence-after plus TTL", Timing{LeaseTTL: 5 * s, FenceAfter: 10 * s, FailoverAfter: 15 * s}, false},
		{"failover before fence", Timing{LeaseTTL: 5 * s, FenceAfter: 30 * s, FailoverAfter: 10 * s}, false},
		{"granted TTL larger than asked breaks the defaults", Timing{LeaseTTL: 20 * s, FenceAfter: 10 * s, FailoverAfter: 30 * s}, false},
		{"zero TTL", Timing{FenceAfter: 10 * s, FailoverAfter: 30 * s}, false},
		{"negative fence-after", Timing{LeaseTTL: s, FenceAfter: -s, FailoverAfter: 30 * s}, false},
	}
	for _, c := range cases {
		if err := c.t.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v", c.name, err)
		}
	}
}

func TestFenceGrace(t *testing.T) {
	t.Parallel()
	tm := Timing{LeaseTTL: 10 * s}
	for stop, want := range map[time.Duration]time.Duration{0: 5 * s, 2 * s: 2 * s, 5 * s: 5 * s, 30 * s: 5 * s, -s: 5 * s} {
		if got := tm.FenceGrace(stop); got != want {
			t.Errorf("FenceGrace(%v) = %v, want %v", stop, got, want)
		}
	}
}

func TestEligible(t *testing.T) {
	t.Parallel()
	cases := []struct {
		failover bool
		kind     placement.Kind
		want     bool
	}{
		{true, placement.Spread, true},
		{true, placement.Hash, true},
		{true, placement.Node, false},
		{false, placement.Spread, false},
		{false, placement.Node, false},
	}
	for _, c := range cases {
		if got := Eligible(c.failover, c.kind); got != c.want {
			t.Errorf("Eligible(%v, %s) = %v", c.failover, c.kind, got)
		}
	}
}
