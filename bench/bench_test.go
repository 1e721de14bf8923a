package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(cleaningM{m}) }

// cleaningM removes a shim the benchmarks built once the tests have run,
// before goleak looks for leaked goroutines.
type cleaningM struct{ m *testing.M }

func (c cleaningM) Run() int {
	code := c.m.Run()
	if shimBuildDir != "" {
		_ = os.RemoveAll(shimBuildDir)
	}
	return code
}

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose: Summarize sorts
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(ds)
	want := Summary{N: 100, Min: time.Millisecond, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond,
		Max: 100 * time.Millisecond, Mean: 50500 * time.Microsecond}
	if s != want {
		t.Fatalf("Summarize(1..100 ms) = %+v, want %+v", s, want)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatalf("Summarize reordered its input: first sample is %v", ds[0])
	}
	cases := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 50, 7},
		{[]time.Duration{7}, 99, 7},
		{[]time.Duration{1, 2, 3, 4}, 50, 2},  // rank ceil(2) = 2
		{[]time.Duration{1, 2, 3, 4}, 51, 3},  // rank ceil(2.04) = 3
		{[]time.Duration{1, 2, 3, 4}, 99, 4},  // rank ceil(3.96) = 4
		{[]time.Duration{1, 2, 3, 4}, 100, 4}, // the maximum
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
	}
	for _, c := range cases {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.sorted, c.p, got, c.want)
		}
	}
}

func TestRowJudgeAndMarkdown(t *testing.T) {
	row := Row{ID: "1", Operation: "op", Unit: "ms", Floor: &Value{P50: 2, P99: 3}, Boxsup: Value{P50: 2.5, P99: 4}, Target: "p50 ≤ 1.5× floor"}
	row.judge(func(r *Row) bool { return r.Boxsup.P50 <= 1.5*r.Floor.P50 })
	if row.Ratio == nil || *row.Ratio != 1.25 || row.Met == nil || !*row.Met {
		t.Fatalf("judge: ratio %v met %v, want 1.25 and true", row.Ratio, row.Met)
	}
	rep := &Report{Rows: []Row{row}}
	want := "| # | operation | floor (p50 / p99) | boxsup p50 | boxsup p99 | ratio | target | met/missed |\n" +
		"|---|---|---|---|---|---|---|---|\n" +
		"| 1 | op | 2.00 ms / 3.00 ms | 2.50 ms | 4.00 ms | 1.25× | p50 ≤ 1.5× floor | met |\n"
	if got := rep.Markdown(); got != want {
		t.Fatalf("Markdown:\n%s\nwant:\n%s", got, want)
	}
}

// The hot-path benchmarks. Run them with
//
//	go test -run '^$' -bench . -count 10 ./bench | tee new.txt
//	benchstat old.txt new.txt

// BenchmarkListRoundTrip is a request answered by the root itself.
func BenchmarkListRoundTrip(b *testing.B) {
	sup, _ := benchSupervisor(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sup.List(ctx, actors.ListOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusRoundTrip is a request routed by the root to a box actor,
// whose reply goes straight back to the caller.
func BenchmarkStatusRoundTrip(b *testing.B) {
	sup, id := benchSupervisor(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sup.Status(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetrics is one Metrics request for a running box (shim and guest).
func BenchmarkMetrics(b *testing.B) {
	sup, id := benchSupervisor(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sup.Metrics(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcSampleFloor is the floor of BenchmarkMetrics for one process:
// /proc/PID/stat and statm read and parsed.
func BenchmarkProcSampleFloor(b *testing.B) {
	buf := make([]byte, 4096)
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readProcSample(pid, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateWrite is one state.json write (temp file, fsync, rename,
// directory fsync), as every box transition does.
func BenchmarkStateWrite(b *testing.B) {
	home, err := layout.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	box, err := home.Box("bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := box.Create(); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	rec := messages.StateRecord{
		ID: "bench", State: messages.StateRunning, Generation: 1,
		Identity:  messages.Identity{PID: 4242, StartTime: 123456, BootID: "0f0e0d0c-0b0a-0908-0706-050403020100"},
		CreatedAt: now, StartedAt: now, UpdatedAt: now,
	}
	b.ReportAllocs()
	for b.Loop() {
		rec.Generation++
		if err := box.WriteState(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSupervisor opens a Supervisor in a temp home with one running box
// and shuts it down (StopAll) when the benchmark ends.
func benchSupervisor(b *testing.B) (*actors.Supervisor, string) {
	b.Helper()
	shim := benchShim(b)
	spec, err := sleeperSpec()
	if err != nil {
		b.Skip(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	sup, err := actors.NewSupervisor(context.Background(), actors.Config{Home: b.TempDir(), ShimBinary: shim, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := stopAll(sup); err != nil {
			b.Error(err)
		}
	})
	const id = "hot"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sup.Start(ctx, spec.startRequest(id, messages.RestartPolicy{})); err != nil {
		b.Fatal(err)
	}
	return sup, id
}

var (
	shimOnce     sync.Once
	shimPath     string
	shimBuildDir string
	shimErr      error
)

// benchShim returns MODULE/bin/boxsup-shim, or builds the shim into a temp
// directory (removed by TestMain) when it has not been built.
func benchShim(b *testing.B) string {
	shimOnce.Do(func() {
		if p, err := filepath.Abs("../bin/boxsup-shim"); err == nil {
			if _, err := os.Stat(p); err == nil {
				shimPath = p
				return
			}
		}
		if shimBuildDir, shimErr = os.MkdirTemp("", "boxsup-bench-shim-"); shimErr != nil {
			return
		}
		shimPath = filepath.Join(shimBuildDir, "boxsup-shim")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", shimPath, "../cmd/boxsup-shim")
		if out, err := cmd.CombinedOutput(); err != nil {
			shimErr = err
			b.Logf("building the shim: %s", out)
		}
	})
	if shimErr != nil {
		b.Fatalf("no shim binary: %v", shimErr)
	}
	return shimPath
}

// TestHealthRowMeasures runs row 10's two sides on a few listeners and
// short windows: every probe passes, and both report some CPU.
func TestHealthRowMeasures(t *testing.T) {
	farm, err := newListenerFarm(20)
	if err != nil {
		t.Fatal(err)
	}
	defer farm.close()
	farm.warmUp, farm.window = 1200*time.Millisecond, time.Second
	floor, err := farm.bareDials(context.Background())
	if err != nil || floor <= 0 {
		t.Fatalf("floor: %v%% of a core, %v", floor, err)
	}
	res, err := farm.scheduled(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.probes < 10 || res.failures != 0 || res.cpu <= 0 {
		t.Fatalf("20 checks every second over 1 s: %+v, want about 20 passing probes", res)
	}
}
