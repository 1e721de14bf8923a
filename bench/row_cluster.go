package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/cluster/client"
	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// clusterMembers is the number of members of rows 11 and 12.
const clusterMembers = 3

// psRatioTarget is row 12's: the cluster-wide ps does three members' work,
// which on one machine shares its cores (three times the floor's CPU), and
// merges it; on three hosts the members sample in parallel.
const psRatioTarget = 4.0

// clusterRows measures row 11 (Start, Stop and Metrics of a box on another
// member, over loopback with mutual TLS, against the same calls on a
// Supervisor in this process) and row 12 (a cluster-wide ps, List and
// MetricsAll, over three members of ClusterBoxes boxes each, against the
// same ps of one member). The members are `boxsup supervise` processes
// with homes of their own, on a real etcd; this process is their client.
func (r *runner) clusterRows(ctx context.Context) ([]Row, error) {
	spec, err := sleeperSpec()
	if err != nil {
		return nil, err
	}
	lab, err := r.startClusterLab(ctx)
	if lab != nil {
		defer lab.close()
	}
	if err != nil {
		return nil, err
	}
	local, err := r.newSupervisor(r.newHome("cluster-local"))
	if err != nil {
		return nil, err
	}
	defer stopAll(local)

	n := r.cfg.Iterations
	r.progress("row 11: %d start/metrics/stop cycles on a member over loopback and on the local root", n)
	var remote, here struct{ start, stop, metrics []time.Duration }
	for i := range n + warmIterations {
		record := i >= warmIterations
		onMember := func() error {
			req := spec.startRequest(fmt.Sprintf("x%05d", i), messages.RestartPolicy{})
			req.Placement = &messages.Placement{Kind: messages.PlaceNode, Node: "m0"}
			s, m, t, err := timeCycle(ctx, lab.client, req)
			if err == nil && record {
				remote.start, remote.metrics, remote.stop = append(remote.start, s), append(remote.metrics, m), append(remote.stop, t)
			}
			return err
		}
		onRoot := func() error {
			s, m, t, err := timeCycle(ctx, control.NewLocal(local), spec.startRequest(fmt.Sprintf("l%05d", i), messages.RestartPolicy{}))
			if err == nil && record {
				here.start, here.metrics, here.stop = append(here.start, s), append(here.metrics, m), append(here.stop, t)
			}
			return err
		}
		steps := []func() error{onMember, onRoot}
		if i%2 == 1 {
			steps = []func() error{onRoot, onMember}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, fmt.Errorf("row 11, iteration %d: %w", i, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rows := []Row{
		// A start also claims the box in etcd (a transaction etcd commits to
		// its log before answering): its cost is judged as a ratio, the
		// others' as a fixed margin.
		crossHostRow("11a", "Start of a box on another member (until ready; includes its etcd claim), over loopback with mTLS", here.start, remote.start,
			"p50 ≤ 1.5× floor", func(r *Row) bool { return r.Boxsup.P50 <= 1.5*r.Floor.P50 }),
		crossHostRow("11b", "Stop of a box on another member (until exited)", here.stop, remote.stop, marginTarget, withinMargin),
		crossHostRow("11c", "Metrics of a box on another member", here.metrics, remote.metrics, marginTarget, withinMargin),
	}

	row12, err := r.clusterPSRow(ctx, lab, spec)
	if err != nil {
		return rows, err
	}
	return append(rows, row12), nil
}

// crossHostMargin is what row 11 allows a request to another member over
// the same call on the local root: a fixed cost (the request and its reply
// each cross a gRPC stream, with the door's hop), not a factor.
const crossHostMargin = 3 // ms

var marginTarget = fmt.Sprintf("p50 ≤ floor + %d ms", crossHostMargin)

func withinMargin(r *Row) bool { return r.Boxsup.P50 <= r.Floor.P50+crossHostMargin }

// crossHostRow is one of row 11's: the local root is the floor.
func crossHostRow(id, op string, floor, boxsup []time.Duration, target string, met func(*Row) bool) Row {
	f := durationValue(Summarize(floor))
	row := Row{ID: id, Operation: op, Unit: "ms", Floor: &f,
		FloorDesc: "the same call on a Supervisor in the calling process, same spec, same run",
		Boxsup:    durationValue(Summarize(boxsup)), Target: target}
	row.judge(met)
	return row
}

// timeCycle starts a box, samples it and stops it (then removes it), and
// returns the time of each call.
func timeCycle(ctx context.Context, b control.Backend, req messages.StartBox) (start, metrics, stop time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*opTimeout)
	defer cancel()
	t0 := time.Now()
	if _, err = b.Start(ctx, req); err != nil {
		return 0, 0, 0, fmt.Errorf("start: %w", err)
	}
	t1 := time.Now()
	if _, err = b.Metrics(ctx, req.ID); err != nil {
		return 0, 0, 0, fmt.Errorf("metrics: %w", err)
	}
	t2 := time.Now()
	if _, err = b.Stop(ctx, req.ID, 0); err != nil {
		return 0, 0, 0, fmt.Errorf("stop: %w", err)
	}
	t3 := time.Now()
	if _, err = b.Remove(ctx, req.ID, true); err != nil {
		return 0, 0, 0, fmt.Errorf("remove: %w", err)
	}
	return t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), nil
}

// clusterPSRow fills every member with ClusterBoxes boxes and times a
// cluster-wide ps against the ps of one member, Rounds×10 samples each,
// alternating.
func (r *runner) clusterPSRow(ctx context.Context, lab *clusterLab, spec boxSpec) (Row, error) {
	per := r.cfg.ClusterBoxes
	r.progress("row 12: starting %d boxes on each of %d members", per, clusterMembers)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for m := range clusterMembers {
		for i := range per {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				req := spec.startRequest(fmt.Sprintf("p%d-%04d", m, i), messages.RestartPolicy{})
				req.Placement = &messages.Placement{Kind: messages.PlaceNode, Node: fmt.Sprintf("m%d", m)}
				sctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
				defer cancel()
				if _, err := lab.client.Start(sctx, req); err != nil {
					mu.Lock()
					failed = errors.Join(failed, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if failed != nil {
		return Row{}, fmt.Errorf("row 12: starting boxes: %w", failed)
	}
	ps := func(b control.Backend) (time.Duration, int, error) {
		t0 := time.Now()
		boxes, err := b.List(ctx, control.Selection{})
		if err == nil {
			_, err = b.MetricsAll(ctx)
		}
		return time.Since(t0), len(boxes), err
	}
	one, err := lab.memberClient(ctx, 0)
	if err != nil {
		return Row{}, err
	}
	var whole, single []time.Duration
	samples := 10 * r.cfg.Rounds
	r.progress("row 12: %d cluster-wide ps of %d boxes against the ps of one member", samples, clusterMembers*per)
	for i := range samples + warmIterations {
		d, n, err := ps(lab.client)
		if err != nil || n != clusterMembers*per {
			return Row{}, fmt.Errorf("row 12: cluster ps listed %d boxes: %v", n, err)
		}
		d1, n1, err := ps(one)
		if err != nil || n1 != per {
			return Row{}, fmt.Errorf("row 12: member ps listed %d boxes: %v", n1, err)
		}
		if i >= warmIterations {
			whole, single = append(whole, d), append(single, d1)
		}
	}
	f := durationValue(Summarize(single))
	row := Row{ID: "12", Operation: fmt.Sprintf("cluster-wide ps (List + MetricsAll) over %d members × %d boxes", clusterMembers, per), Unit: "ms",
		Floor:     &f,
		FloorDesc: fmt.Sprintf("the same ps of one member's %d boxes through its control socket", per),
		Boxsup:    durationValue(Summarize(whole)), Target: fmt.Sprintf("p50 ≤ %.0f× floor", psRatioTarget)}
	row.judge(func(r *Row) bool { return r.Boxsup.P50 <= psRatioTarget*r.Floor.P50 })
	return row, nil
}

// clusterLab is row 11's and 12's cluster: etcd, the members and a client.
type clusterLab struct {
	r       *runner
	dir     string
	etcd    *exec.Cmd
	members []*exec.Cmd
	homes   []string
	client  *client.Client
}

// startClusterLab starts etcd (the etcd binary on PATH, or $BOXSUP_ETCD),
// makes a CA and certificates, starts the members and connects a client.
// It returns the lab even on error, for close.
func (r *runner) startClusterLab(ctx context.Context) (*clusterLab, error) {
	etcdBin := os.Getenv("BOXSUP_ETCD")
	if etcdBin == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			return nil, errors.New("rows 11–12 need etcd (Debian's etcd-server, or $BOXSUP_ETCD)")
		}
		etcdBin = p
	}
	boxsupBin := r.cfg.Boxsup
	if _, err := os.Stat(boxsupBin); err != nil {
		return nil, fmt.Errorf("rows 11–12 need the boxsup binary (make build): %w", err)
	}
	lab := &clusterLab{r: r, dir: filepath.Join(r.root, "cluster")}
	if err := os.MkdirAll(lab.dir, 0o700); err != nil {
		return lab, err
	}
	endpoint, err := lab.startEtcd(ctx, etcdBin)
	if err != nil {
		return lab, err
	}
	files, err := lab.writePKI()
	if err != nil {
		return lab, err
	}
	for m := range clusterMembers {
		node := fmt.Sprintf("m%d", m)
		home := r.newHome("cluster-" + node)
		if err := os.MkdirAll(home, 0o700); err != nil {
			return lab, err
		}
		cmd := exec.Command(boxsupBin, "--home", home, "--shim", r.cfg.Shim, "--log-level", "warn",
			"--cluster", "bench", "--etcd", endpoint,
			"--tls-ca", files[node].CA, "--tls-cert", files[node].Cert, "--tls-key", files[node].Key,
			"supervise", "--stop-on-exit", "--node", node, "--advertise", "127.0.0.1:0")
		cmd.Dir = home
		cmd.Stderr = r.cfg.Progress
		if err := cmd.Start(); err != nil {
			return lab, err
		}
		lab.members = append(lab.members, cmd)
		lab.homes = append(lab.homes, home)
	}
	m, err := mtls.Load(files["client"])
	if err != nil {
		return lab, err
	}
	if lab.client, err = client.New(ctx, client.Config{Cluster: "bench", Etcd: []string{endpoint},
		Transport: mtls.Transport{Material: m}, Listen: "127.0.0.1:0"}); err != nil {
		return lab, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		nodes, err := lab.client.Nodes(ctx)
		ready := 0
		for _, n := range nodes {
			if n.Accepting {
				ready++
			}
		}
		if err == nil && ready == clusterMembers {
			return lab, nil
		}
		if time.Now().After(deadline) {
			return lab, fmt.Errorf("the members did not all join within a minute (%d ready): %v", ready, err)
		}
		select {
		case <-ctx.Done():
			return lab, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// memberClient is a control client of member m's own socket.
func (l *clusterLab) memberClient(ctx context.Context, m int) (control.Backend, error) {
	return control.Connect(ctx, l.homes[m], control.ConnectOptions{Config: actors.Config{ShimBinary: l.r.cfg.Shim}})
}

// startEtcd runs etcd on loopback and waits for its /health.
func (l *clusterLab) startEtcd(ctx context.Context, bin string) (string, error) {
	ports := make([]int, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	l.etcd = exec.Command(bin, "--name", "bench", "--data-dir", filepath.Join(l.dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "bench="+peer,
		"--log-level", "error", "--logger", "zap")
	l.etcd.Dir = l.dir
	l.etcd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.etcd.Start(); err != nil {
		return "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(client + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(b) > 0 {
				return client, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", errors.New("etcd did not become healthy within 30 s")
}

// writePKI makes a CA and a certificate for each member and the client,
// all for 127.0.0.1.
func (l *clusterLab) writePKI() (map[string]mtls.Files, error) {
	dir := filepath.Join(l.dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	auth, err := mtls.NewAuthority("bench", time.Hour, now)
	if err != nil {
		return nil, err
	}
	if err := mtls.WriteNew(dir, "ca.pem", auth.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	out := map[string]mtls.Files{}
	names := []string{"client"}
	for m := range clusterMembers {
		names = append(names, fmt.Sprintf("m%d", m))
	}
	for _, name := range names {
		cert, key, err := auth.Issue(name, []string{"127.0.0.1"}, time.Hour, now)
		if err != nil {
			return nil, err
		}
		if err := mtls.WriteNew(dir, name+".pem", cert, 0o644); err != nil {
			return nil, err
		}
		if err := mtls.WriteNew(dir, name+".key", key, 0o600); err != nil {
			return nil, err
		}
		out[name] = mtls.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
	}
	return out, nil
}

// close stops the client, the members (which stop their boxes) and etcd.
func (l *clusterLab) close() {
	if l.client != nil {
		_ = l.client.Close()
	}
	for _, m := range l.members {
		_ = m.Process.Signal(syscall.SIGTERM)
	}
	for _, m := range l.members {
		done := make(chan struct{})
		go func() { _ = m.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			_ = m.Process.Kill()
			<-done
		}
	}
	if l.etcd != nil && l.etcd.Process != nil {
		_ = l.etcd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = l.etcd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = l.etcd.Process.Kill()
			<-done
		}
	}
}
