package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterFlagsAreCheckedBeforeAnythingStarts: cluster settings that
// cannot be honoured are usage errors (exit 2) with the reason, before any
// connection is made; the end-to-end behaviour is in cluster/e2e.
func TestClusterFlagsAreCheckedBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	home := filepath.Join(t.TempDir(), "home")
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.yaml")
	if err := os.WriteFile(loose, []byte("cluster: x\netcd: [http://127.0.0.1:1]\ninsecure: true\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o666); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("cluster: x\netcd: [http://127.0.0.1:1]\nfailover: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	etcd := []string{"--cluster", "x", "--etcd", "http://127.0.0.1:1"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"placement without a cluster", []string{"run", "-d", "--node", "a", "--", "true"}, "needs a cluster"},
		{"failover without a cluster", []string{"run", "-d", "--failover", "--", "true"}, "needs a cluster"},
		{"a cluster without etcd", []string{"--cluster", "x", "ps"}, "etcd endpoints"},
		{"settings without a name", []string{"--etcd", "http://127.0.0.1:1", "ps"}, "without a cluster name"},
		{"neither TLS nor insecure", append(etcd, "ps"), "--tls-ca"},
		{"TLS and insecure", append(etcd, "--insecure-cluster", "--tls-ca", "/nonexistent", "ps"), "exclude each other"},
		{"https etcd without TLS", []string{"--cluster", "x", "--etcd", "https://127.0.0.1:1", "--insecure-cluster", "ps"}, "--etcd-ca"},
		{"node and placement", append(etcd, "--insecure-cluster", "run", "-d", "--node", "a", "--placement", "hash", "--", "true"), "exclude each other"},
		{"failover pinned", append(etcd, "--insecure-cluster", "run", "-d", "--node", "a", "--failover", "--", "true"), "cannot fail over"},
		{"member flags without a cluster", []string{"supervise", "--node", "a"}, "--node joins a cluster"},
		{"member without a name", append(etcd, "--insecure-cluster", "supervise", "--advertise", "127.0.0.1:7400"), "--node NAME"},
		{"unsafe timing", append(etcd, "--insecure-cluster", "supervise", "--node", "a", "--advertise", "127.0.0.1:0",
			"--fence-after", "10s", "--failover-after", "15s"), "failover-after"},
		{"a config file others can write", []string{"--cluster-config", loose, "ps"}, "writable by group or others"},
		{"an unknown setting", []string{"--cluster-config", unknown, "ps"}, "failover"},
	}
	for _, c := range cases {
		r := runBoxsup(t, nil, append([]string{"--home", home}, c.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: boxsup %s: %s\nwant exit 2 mentioning %q", c.name, strings.Join(c.args, " "), r, c.want)
		}
	}
}
