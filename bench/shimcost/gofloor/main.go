// Command gofloor measures what any Go process costs, whatever it does: the
// floor under a shim written in Go. It runs N copies of the least a Go
// process can be (it waits on a pipe in the netpoller), N copies of the
// same that also catches SIGTERM through os/signal (as a shim that stops
// gracefully must), and N `sleep`s, all with GOMAXPROCS=1 as shimproc
// spawns shims, and prints
//
//   - the median threads, private memory (Pss_Anon) and PSS of each kind;
//   - the time from the first SIGTERM until all N are reaped, for the
//     SIGTERM-catching Go process and for sleep.
//
// Usage:
//
//	go run ./bench/shimcost/gofloor [N]     # N defaults to 1000
//
// docs/PERFORMANCE.md ("The Go floor") holds its figures and what they mean
// for issue 13's targets. The children are started and reaped by this
// process and killed by PID, never by name.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The child roles: this binary re-executed with one of them as its only
// argument.
const (
	roleWait    = "wait"         // block on a pipe, nothing else
	roleSigterm = "wait-sigterm" // the same, and exit on SIGTERM through os/signal
)

func main() {
	if len(os.Args) == 2 {
		switch os.Args[1] {
		case roleWait:
			waitForever(false)
			return
		case roleSigterm:
			waitForever(true)
			return
		}
	}
	n := 1000
	if len(os.Args) == 2 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 {
			fmt.Fprintln(os.Stderr, "usage: gofloor [N]")
			os.Exit(2)
		}
		n = v
	}
	if err := measure(n); err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
}

// waitForever parks the only goroutine on a pipe that nobody writes: the
// process then has the runtime's own threads and nothing of its own. With
// sigterm it also asks os/signal for SIGTERM and ends on it.
func waitForever(sigterm bool) {
	r, w, err := os.Pipe()
	if err != nil {
		os.Exit(1)
	}
	if sigterm {
		caught := make(chan os.Signal, 1)
		signal.Notify(caught, syscall.SIGTERM)
		go func() {
			<-caught
			_, _ = w.Write([]byte{0})
		}()
	}
	_, _ = r.Read(make([]byte, 1))
}

// kind is one kind of child: a label and its command line.
type kind struct {
	label string
	argv  []string
}

func measure(n int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return err
	}
	kinds := []kind{
		{"Go, waiting on a pipe", []string{self, roleWait}},
		{"Go, waiting, SIGTERM through os/signal", []string{self, roleSigterm}},
		{"sleep", []string{sleep, "3600"}},
	}
	fmt.Printf("%d of each, GOMAXPROCS=1; medians (min-max)\n", n)
	for _, k := range kinds {
		cmds, err := startAll(k.argv, n)
		if err != nil {
			return err
		}
		time.Sleep(time.Second) // let every copy reach its idle state
		line := describe(cmds)
		took := stopAll(cmds)
		fmt.Printf("%-40s %s; SIGTERM to all reaped %v\n", k.label+":", line, took.Round(time.Millisecond))
	}
	return nil
}

// startAll starts n copies of argv with GOMAXPROCS=1 in their environment;
// on a failure it stops the ones it started.
func startAll(argv []string, n int) ([]*exec.Cmd, error) {
	cmds := make([]*exec.Cmd, 0, n)
	for range n {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = append(os.Environ(), "GOMAXPROCS=1")
		if err := c.Start(); err != nil {
			for _, c := range cmds {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// stopAll sends SIGTERM to every child, then SIGKILL to any still there
// after 10 s, and returns the time until all were reaped.
func stopAll(cmds []*exec.Cmd) time.Duration {
	start := time.Now()
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	killer := time.AfterFunc(10*time.Second, func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
	})
	for _, c := range cmds {
		_ = c.Wait()
	}
	took := time.Since(start)
	killer.Stop()
	return took
}

// describe reads the children's threads, Pss_Anon and Pss and formats
// their medians.
func describe(cmds []*exec.Cmd) string {
	var threads, anon, pss []int
	for _, c := range cmds {
		pid := c.Process.Pid
		if v, ok := procField(pid, "status", "Threads:"); ok {
			threads = append(threads, v)
		}
		if v, ok := procField(pid, "smaps_rollup", "Pss_Anon:"); ok {
			anon = append(anon, v)
		}
		if v, ok := procField(pid, "smaps_rollup", "Pss:"); ok {
			pss = append(pss, v)
		}
	}
	return fmt.Sprintf("threads %s, Pss_Anon %s KiB, Pss %s KiB", median(threads), median(anon), median(pss))
}

// procField returns the first number after key in /proc/PID/file.
func procField(pid int, file, key string) (int, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0, false
			}
			v, err := strconv.Atoi(fields[0])
			return v, err == nil
		}
	}
	return 0, false
}

// median formats the median of vs with its range.
func median(vs []int) string {
	if len(vs) == 0 {
		return "?"
	}
	slices.Sort(vs)
	return fmt.Sprintf("%d (%d-%d)", vs[(len(vs)-1)/2], vs[0], vs[len(vs)-1])
}
