package shimproc

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// samplePollInterval is how often the metrics test samples again while it
// waits for the busy loop to show.
const samplePollInterval = 200 * time.Millisecond

func TestMetrics(t *testing.T) {
	for _, tc := range cgroupModes {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == CgroupRequired {
				requireCgroup(t)
			}
			box := newBox(t, "busy")
			// A guest that burns one CPU, with a sleeping child of its own.
			h := spawnBox(t, SpawnRequest{
				Box: box, Spec: guestSpec("/bin/sh", "-c", "/bin/sleep 1000 & while :; do :; done"),
				Cgroup: tc.mode, CgroupParent: testCgroupParent(t),
			})
			if err := os.WriteFile(filepath.Join(box.Dir, "blob"), make([]byte, 10000), 0o600); err != nil {
				t.Fatal(err)
			}
			maxPercent := float64(100 * runtime.NumCPU())
			m, err := h.Metrics()
			if err != nil {
				t.Fatal(err)
			}
			if m.ID != box.ID || m.PID != h.PID() || m.MemoryBytes == 0 || m.Processes < 2 || m.DiskBytes < 10000 ||
				m.Uptime <= 0 || m.CPUPercent < 0 || m.CPUPercent > maxPercent || m.SampledAt.IsZero() {
				t.Fatalf("first sample %+v", m)
			}
			// The busy loop shows up within a few samples.
			deadline := time.Now().Add(10 * time.Second)
			for {
				time.Sleep(samplePollInterval)
				if m, err = h.Metrics(); err != nil {
					t.Fatal(err)
				}
				if m.CPUPercent < 0 || m.CPUPercent > maxPercent {
					t.Fatalf("CPUPercent %v outside [0, %v]", m.CPUPercent, maxPercent)
				}
				if m.CPUPercent > 20 && m.Processes == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no busy CPU or not 3 processes after 10 s: %+v", m)
				}
			}
			t.Logf("sample: %+v", m)
		})
	}
}

func TestMetricsIdleTree(t *testing.T) {
	box := newBox(t, "idle")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff})
	// The shim writes its first lines right after its ready byte: the box
	// directory then holds some bytes to count.
	waitFor(t, 10*time.Second, "the shim's first lines in shim.log", func() bool {
		fi, err := os.Stat(box.ShimLogPath())
		return err == nil && fi.Size() > 0
	})
	for range 3 {
		m, err := h.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if m.Processes != 2 || m.MemoryBytes == 0 || m.DiskBytes == 0 || m.CPUPercent < 0 || m.CPUPercent > float64(100*runtime.NumCPU()) {
			t.Fatalf("sample %+v: want shim + guest, memory and disk", m)
		}
		if len(h.metrics.procs) != 2 {
			t.Errorf("%d processes cached between samples, want 2", len(h.metrics.procs))
		}
	}
}
