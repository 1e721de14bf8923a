package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/cluster/client"
	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// The environment of the test binary re-run as a cluster client: one
// protoactor remote per process (remote.Start replaces gRPC's global logger
// unsynchronised), so the client runs apart from the test's own etcd
// clients.
const (
	childEnv     = "BOXSUP_CLUSTER_E2E_CHILD" // "requests"
	childEtcdEnv = "BOXSUP_CLUSTER_E2E_ETCD"
	childNodeEnv = "BOXSUP_CLUSTER_E2E_NODE" // the member to place the box on
	// childNetnsEnv names the network namespace (under /run/netns) that the
	// "netns" child enters before it execs its arguments.
	childNetnsEnv = "BOXSUP_CLUSTER_E2E_NETNS"
)

// TestEveryRequestIsAnsweredAcrossHosts: the Go client (cluster/client, the
// embedder's API) sends every request of the control Backend to a member
// on another host (another process), and each is answered.
func TestEveryRequestIsAnsweredAcrossHosts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.useInsecure()
	c.startMember("a")
	c.startMember("b")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=requests", childEtcdEnv+"="+c.etcd.Endpoint, childNodeEnv+"=b", markEnv+"="+c.mark)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client child: %v\n%s", err, out)
	}
	want := []string{"Nodes", "Start", "Status", "Inspect", "Signal", "Update", "List", "Metrics", "MetricsAll", "Logs", "Events",
		"Events history", "Stop", "StartExisting", "Kill", "Wait", "Adopt", "Remove", "Run"}
	text := string(out)
	for _, w := range want {
		if !strings.Contains(text, "OK "+w+"\n") {
			t.Errorf("request %s not answered as expected", w)
		}
	}
	if t.Failed() || strings.Contains(text, "FAIL") {
		t.Fatalf("client child:\n%s", text)
	}
}

// childMain runs a child mode and returns its exit code.
func childMain(mode string) int {
	switch mode {
	case "netns":
		return execInNetns(os.Getenv(childNetnsEnv), os.Args[1:])
	case "requests":
	default:
		fmt.Println("FAIL unknown child mode", mode)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(ctx, client.Config{Cluster: "e2e", Etcd: []string{os.Getenv(childEtcdEnv)},
		Transport: mtls.Transport{Insecure: true}, Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println("FAIL New:", err)
		return 1
	}
	defer c.Close()
	if failed := requests(ctx, c, os.Getenv(childNodeEnv)); failed {
		return 1
	}
	return 0
}

// requests sends every request once and prints "OK name" or "FAIL name:
// why" for each.
func requests(ctx context.Context, c *client.Client, node string) (failed bool) {
	check := func(name string, err error) bool {
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", name, err)
			failed = true
			return false
		}
		fmt.Printf("OK %s\n", name)
		return true
	}
	want := func(cond bool, format string, args ...any) error {
		if cond {
			return nil
		}
		return fmt.Errorf(format, args...)
	}
	began := time.Now()
	nodes, err := c.Nodes(ctx)
	check("Nodes", errors.Join(err, want(len(nodes) == 2 && nodes[0].Accepting && nodes[1].Accepting, "nodes %+v", nodes)))

	req := messages.StartBox{ID: "rq", Detach: true, StopTimeout: time.Second,
		Placement: &messages.Placement{Kind: messages.PlaceNode, Node: node},
		Spec: messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{Executable: "/bin/sh",
			Args: []string{"-c", "echo ready to serve; exec sleep 3600"}, Env: []string{markEnv + "=" + os.Getenv(markEnv)}}}}
	st, err := c.Start(ctx, req)
	check("Start", errors.Join(err, want(st.Node == node && st.State == messages.StateRunning, "status %+v", st)))
	st, err = c.Status(ctx, "rq")
	check("Status", errors.Join(err, want(st.Node == node && st.PID > 0, "status %+v", st)))
	in, err := c.Inspect(ctx, "rq")
	check("Inspect", errors.Join(err, want(in.Status.Node == node && in.Spec != nil && in.Record != nil && in.Paths.Dir != "", "inspect %+v", in)))
	_, err = c.Signal(ctx, "rq", "SIGWINCH")
	check("Signal", err)
	st, err = c.Update(ctx, messages.UpdateBox{ID: "rq", Labels: map[string]string{"app": "rq"}})
	check("Update", errors.Join(err, want(st.Labels["app"] == "rq", "labels %v", st.Labels)))
	list, err := c.List(ctx, control.Selection{Labels: "app=rq"})
	check("List", errors.Join(err, want(len(list) == 1 && list[0].ID == "rq" && list[0].Node == node, "list %+v", list)))
	m, err := c.Metrics(ctx, "rq")
	check("Metrics", errors.Join(err, want(m.ID == "rq" && m.PID > 0, "metrics %+v", m)))
	all, err := c.MetricsAll(ctx)
	check("MetricsAll", errors.Join(err, want(len(all) == 1 && all[0].ID == "rq", "metrics %+v", all)))
	var logs string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs, "ready to serve"); {
		var r io.ReadCloser
		if r, err = c.Logs(ctx, "rq", actors.LogOptions{}); err == nil {
			b, _ := io.ReadAll(r)
			_ = r.Close()
			logs = string(b)
		}
		time.Sleep(pollInterval)
	}
	check("Logs", errors.Join(err, want(strings.Contains(logs, "ready to serve"), "logs %q", logs)))

	// Events: subscribe, then stop the box; its exit must arrive. The
	// subscription's arrival at the member is not observable through the
	// Backend, so the box is stopped (and started again) until one exit is
	// seen.
	evCtx, stopEvents := context.WithCancel(ctx)
	exits := make(chan struct{}, 100)
	var evErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		evErr = c.Events(evCtx, control.Selection{Boxes: []string{"rq"}}, func(ev messages.Event) {
			if _, ok := ev.(messages.BoxExited); ok {
				exits <- struct{}{}
			}
		})
	}()
	seen := false
	for attempt := 0; attempt < 10 && !seen; attempt++ {
		st, err = c.Stop(ctx, "rq", 0)
		if attempt == 0 {
			check("Stop", errors.Join(err, want(st.State == messages.StateExited, "status %+v", st)))
		}
		select {
		case <-exits:
			seen = true
		case <-time.After(3 * time.Second):
			_, _ = c.StartExisting(ctx, "rq")
		}
	}
	check("Events", want(seen, "no BoxExited event"))
	stopEvents()
	wg.Wait()
	if !errors.Is(evErr, context.Canceled) {
		check("Events end", evErr)
	}
	// The members' history, up to now: the box's start is in it.
	var kinds []string
	err = c.Events(ctx, control.Selection{Boxes: []string{"rq"}, Since: began, Until: time.Now()}, func(ev messages.Event) {
		kinds = append(kinds, ev.Kind())
	})
	check("Events history", errors.Join(err, want(slices.Contains(kinds, "BoxStarted") && slices.Contains(kinds, "BoxExited"), "history %v", kinds)))

	st, err = c.StartExisting(ctx, "rq")
	check("StartExisting", errors.Join(err, want(st.State == messages.StateRunning, "status %+v", st)))
	st, err = c.Kill(ctx, "rq")
	check("Kill", errors.Join(err, want(st.State == messages.StateExited, "status %+v", st)))
	st, err = c.Wait(ctx, "rq")
	check("Wait", errors.Join(err, want(st.State == messages.StateExited, "status %+v", st)))
	_, err = c.Adopt(ctx, "rq", os.Getpid())
	check("Adopt", want(errors.Is(err, messages.ErrIdentityMismatch) || errors.Is(err, messages.ErrNotFound), "adopting a process that is no shim: %v", err))
	_, err = c.Remove(ctx, "rq", true)
	check("Remove", err)
	_, err = c.Status(ctx, "rq")
	check("Status after Remove", want(errors.Is(err, messages.ErrNotFound), "status of a removed box: %v", err))

	run := req
	run.ID, run.Detach = "once", false
	run.Spec.GuestEntrypoint.Args = []string{"-c", "exit 3"}
	st, err = c.Run(ctx, run, true, control.RunHooks{})
	check("Run", errors.Join(err, want(st.LastExit != nil && st.LastExit.ExitCode == 3, "status %+v", st)))
	return failed
}

// execInNetns enters the named network namespace (only it) on this thread
// and execs argv there; exec keeps the thread's namespaces.
func execInNetns(name string, argv []string) int {
	runtime.LockOSThread()
	fd, err := unix.Open(filepath.Join("/run/netns", name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open netns:", err)
		return 2
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		fmt.Fprintln(os.Stderr, "setns:", err)
		return 2
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, childEnv+"=") && !strings.HasPrefix(e, childNetnsEnv+"=") {
			env = append(env, e)
		}
	}
	err = syscall.Exec(argv[0], argv, env)
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 2
}
