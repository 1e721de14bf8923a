package remoting

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

// The environment of a child process.
const (
	childModeEnv   = "BOXSUP_REMOTING_CHILD" // "member" or "ask"
	childCAEnv     = "BOXSUP_REMOTING_CA"    // empty: insecure transport
	childCertEnv   = "BOXSUP_REMOTING_CERT"
	childKeyEnv    = "BOXSUP_REMOTING_KEY"
	childTargetEnv = "BOXSUP_REMOTING_TARGET" // the member to ask (ask), or to ask back (member)
)

// requestTimeout is generous: tests wait on replies and on loss events; a
// refusal is proven by its own signal, not by this running out.
const requestTimeout = 20 * time.Second

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// childMain runs a child and returns its exit code. It reports on stdout,
// one fact per line: "ADDR a", "REPLY id state reason", "LOST a", "ERR text".
func childMain(mode string) int {
	var tr mtls.Transport
	if ca := os.Getenv(childCAEnv); ca == "" {
		tr.Insecure = true
	} else {
		m, err := mtls.Load(mtls.Files{CA: ca, Cert: os.Getenv(childCertEnv), Key: os.Getenv(childKeyEnv)})
		if err != nil {
			fmt.Println("ERR", err)
			return 1
		}
		tr.Material = m
	}
	var out sync.Mutex
	say := func(f string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(f+"\n", a...)
	}
	system := quietSystem()
	ep, err := Start(system, Config{
		Listen: "127.0.0.1:0", Transport: tr, ConnectRetries: 1, Logger: quietLogger(),
		OnEndpointLost: func(addr string) { say("LOST %s", addr) },
	})
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	defer system.Shutdown()
	defer ep.Stop(context.Background())
	say("ADDR %s", ep.Address())
	switch mode {
	case "member":
		if err := spawnRoots(system, os.Getenv(childTargetEnv)); err != nil {
			say("ERR %v", err)
			return 1
		}
		_, _ = io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin
	case "ask":
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		reply, err := Request(ctx, system, RootOf(os.Getenv(childTargetEnv)), &messages.StatusRequest{ID: "asked"}, requestTimeout)
		if err != nil {
			say("ERR %v", err)
			return 0
		}
		st := reply.(*messages.BoxStatus)
		say("REPLY %s %s %s", st.ID, st.State, st.Reason)
	}
	return 0
}

// spawnRoots spawns a stand-in root supervisor that speaks plain messages,
// as boxsup's root does, and in front of it, under RootName, an actor that
// serves remote peers through Forward. The stand-in answers StatusRequest
// with a BoxStatus, and StartBox by first asking the root at back (so this
// member reaches the asker's root too) and then answering with the spec's
// secret and what it heard back.
func spawnRoots(system *actor.ActorSystem, back string) error {
	plain := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.StatusRequest:
			ctx.Respond(&messages.BoxStatus{ID: m.ID, State: messages.StateRunning})
		case *messages.StartBox:
			heard := "unreached"
			rctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			if r, err := Request(rctx, system, RootOf(back), &messages.StatusRequest{ID: "back"}, requestTimeout); err == nil {
				heard = string(r.(*messages.BoxStatus).State)
			}
			ctx.Respond(&messages.BoxStatus{ID: m.ID, State: messages.StateRunning, Reason: m.Spec.Secrets[0].Value.Reveal() + "|" + heard})
		case *messages.Remove:
			ctx.Respond(messages.Errorf(messages.ErrBusy, "box %q is running", m.ID))
		}
	}))
	_, err := system.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if env, ok := ctx.Message().(*wire.Envelope); ok {
			Forward(system, env, ctx.Sender(), plain, requestTimeout)
		}
	}), RootName)
	return err
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	addr  string
}

// startChild runs this test binary as a member or asker with files (nil:
// insecure) and waits for its address.
func startChild(t *testing.T, mode string, files *mtls.Files, target string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childTargetEnv+"="+target)
	if files != nil {
		cmd.Env = append(cmd.Env, childCAEnv+"="+files.CA, childCertEnv+"="+files.Cert, childKeyEnv+"="+files.Key)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = c.stdin.Close()
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
	c.addr = strings.TrimPrefix(c.expect(t, "ADDR "), "ADDR ")
	return c
}

// expect returns the child's next line that starts with one of prefixes,
// failing on an ERR line or at the deadline.
func (c *child) expect(t *testing.T, prefixes ...string) string {
	t.Helper()
	deadline := time.After(requestTimeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited without %v", prefixes)
			}
			for _, p := range prefixes {
				if strings.HasPrefix(line, p) {
					return line
				}
			}
			if strings.HasPrefix(line, "ERR ") && !contains(prefixes, "ERR ") {
				t.Fatalf("child: %s", line)
			}
		case <-deadline:
			t.Fatalf("child said none of %v in time", prefixes)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pki is the package's test CA, with a foreign one, in a directory removed
// at the end of TestMain's run.
type pki struct {
	dir     string
	ca      *mtls.Authority
	foreign *mtls.Authority
	mu      sync.Mutex
	n       int
}

func (p *pki) issue(t *testing.T, foreign bool) mtls.Files {
	t.Helper()
	p.mu.Lock()
	p.n++
	name := fmt.Sprintf("n%d", p.n)
	p.mu.Unlock()
	auth, caFile := p.ca, "ca.pem"
	if foreign {
		auth, caFile = p.foreign, "foreign-ca.pem"
	}
	cert, key, err := auth.Issue(name, []string{"127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteNew(p.dir, name+".pem", cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteNew(p.dir, name+".key", key, 0o600); err != nil {
		t.Fatal(err)
	}
	return mtls.Files{CA: filepath.Join(p.dir, caFile), Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+".key")}
}
