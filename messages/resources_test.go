package messages

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCPUQuotaMillis(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cpus   uint8
		millis uint32
		want   uint32
	}{
		{0, 0, 0},
		{2, 0, 2000},
		{0, 500, 500},
		{2, 1500, 1500}, // cpu_millis is the quota; cpus stays a VM's vCPU count
	} {
		s := InstanceSpec{CPUs: c.cpus, CPUMillis: c.millis}
		if got := s.CPUQuotaMillis(); got != c.want {
			t.Errorf("cpus %d, cpu_millis %d: quota %d, want %d", c.cpus, c.millis, got, c.want)
		}
		if got := s.HasResourceLimits(); got != (c.want != 0) {
			t.Errorf("cpus %d, cpu_millis %d: HasResourceLimits %v", c.cpus, c.millis, got)
		}
	}
}

func TestCPUMillisValidated(t *testing.T) {
	t.Parallel()
	for _, millis := range []uint32{1, MinCPUMillis - 1, MaxCPUMillis + 1} {
		s := sampleSpec()
		s.CPUMillis = millis
		err := s.Validate()
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "cpu_millis") {
			t.Errorf("cpu_millis %d: %v, want ErrBadSpec naming cpu_millis", millis, err)
		}
	}
	s := sampleSpec()
	s.CPUMillis = 500
	if err := s.Validate(); err != nil {
		t.Errorf("cpu_millis 500: %v", err)
	}
}

// TestCPUMillisIsOptionalOnTheWire: a spec without cpu_millis encodes as
// before, so that an older shim or reader sees no difference.
func TestCPUMillisIsOptionalOnTheWire(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(InstanceSpec{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "cpu_millis") {
		t.Errorf("unset cpu_millis encoded: %s", b)
	}
}

// TestUnsupportedIsABadSpec: a caller that knows only ErrBadSpec still
// recognises a refused limit, also after a trip through JSON.
func TestUnsupportedIsABadSpec(t *testing.T) {
	t.Parallel()
	err := Errorf(ErrUnsupported, "memory_mib needs the memory controller")
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrBadSpec) {
		t.Fatalf("%v: want ErrUnsupported and ErrBadSpec", err)
	}
	b, _ := json.Marshal(err)
	var back *Error
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(back, ErrBadSpec) {
		t.Errorf("after JSON: %v is not ErrBadSpec", back)
	}
}
