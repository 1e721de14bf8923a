package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/cluster/mtls"
)

// certNamePattern keeps certificate names usable as file names.
var certNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Tools for running boxsup on many hosts",
	}
	cmd.AddCommand(a.clusterCertsCommand(), a.clusterMembersCommand())
	return cmd
}

func (a *app) clusterCertsCommand() *cobra.Command {
	var (
		dir   string
		nodes []string
		days  int
	)
	cmd := &cobra.Command{
		Use:   "certs --dir DIR --node NAME=HOST[,HOST...]...",
		Short: "Make a cluster CA and per-node certificates for trying a cluster out",
		Long: "Make an ECDSA P-256 CA (DIR/ca.pem, DIR/ca.key) unless DIR holds one already, and\n" +
			"for each --node a certificate and key that serve and dial, with the hosts it\n" +
			"advertises (IP addresses or DNS names) as SANs. A cluster client needs one too,\n" +
			"for the host it listens on: members answer a client by dialling it back.\n" +
			"Keys are written 0600 and no file is ever overwritten. Copy ca.pem and a node's\n" +
			"NAME.pem and NAME.key to it; keep ca.key off the members. For production, issue\n" +
			"certificates from your own PKI instead.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError(errors.New("--dir is required"))
			}
			if len(nodes) == 0 {
				return usageError(errors.New("give at least one --node NAME=HOST"))
			}
			if days <= 0 {
				return usageError(fmt.Errorf("--days %d: must be positive", days))
			}
			return a.makeCerts(dir, nodes, time.Duration(days)*24*time.Hour)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory for the CA and certificates (created 0700)")
	f.StringArrayVar(&nodes, "node", nil, "a member or client: NAME=HOST[,HOST...], HOST being what it advertises")
	f.IntVar(&days, "days", 365, "validity in days (a certificate never outlives its CA)")
	return cmd
}

type certRequest struct {
	name  string
	hosts []string
}

// parseCertRequests checks every name before anything is written.
func parseCertRequests(nodes []string) ([]certRequest, error) {
	var out []certRequest
	seen := map[string]bool{"ca": true}
	add := func(r certRequest) error {
		if !certNamePattern.MatchString(r.name) {
			return usageError(fmt.Errorf("certificate name %q: use letters, digits, '.', '_' and '-'", r.name))
		}
		if seen[r.name] {
			return usageError(fmt.Errorf("certificate name %q given twice (or reserved)", r.name))
		}
		seen[r.name] = true
		out = append(out, r)
		return nil
	}
	for _, n := range nodes {
		name, hostList, ok := strings.Cut(n, "=")
		var hosts []string
		for _, h := range strings.Split(hostList, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		if !ok || len(hosts) == 0 {
			return nil, usageError(fmt.Errorf("--node %q: want NAME=HOST[,HOST...]", n))
		}
		if err := add(certRequest{name: name, hosts: hosts}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (a *app) makeCerts(dir string, nodes []string, validity time.Duration) error {
	reqs, err := parseCertRequests(nodes)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	auth, created, err := openOrCreateCA(dir, validity, now)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(a.stdout, "created CA %s (key %s: keep it off the members)\n", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"))
	}
	for _, r := range reqs {
		for _, f := range []string{r.name + ".pem", r.name + ".key"} {
			if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
				return fmt.Errorf("%s exists already; not overwriting it", filepath.Join(dir, f))
			}
		}
	}
	for _, r := range reqs {
		cert, key, err := auth.Issue(r.name, r.hosts, validity, now)
		if err != nil {
			return err
		}
		if err := mtls.WriteNew(dir, r.name+".key", key, 0o600); err != nil {
			return err
		}
		if err := mtls.WriteNew(dir, r.name+".pem", cert, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "wrote %s and %s (%s)\n", filepath.Join(dir, r.name+".pem"), filepath.Join(dir, r.name+".key"), strings.Join(r.hosts, ","))
	}
	return nil
}

// openOrCreateCA reuses DIR/ca.pem and DIR/ca.key when both exist (so that
// nodes can be added later), creates both when neither does, and refuses a
// half-present pair.
func openOrCreateCA(dir string, validity time.Duration, now time.Time) (*mtls.Authority, bool, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	_, certErr := os.Lstat(certPath)
	_, keyErr := os.Lstat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		certPEM, err := mtls.ReadTrusted(certPath, false)
		if err != nil {
			return nil, false, err
		}
		keyPEM, err := mtls.ReadTrusted(keyPath, true)
		if err != nil {
			return nil, false, err
		}
		auth, err := mtls.ParseAuthority(certPEM, keyPEM)
		return auth, false, err
	case certErr == nil || keyErr == nil:
		return nil, false, fmt.Errorf("%s holds only one of ca.pem and ca.key; refusing to guess", dir)
	}
	auth, err := mtls.NewAuthority("boxsup cluster CA", validity, now)
	if err != nil {
		return nil, false, err
	}
	keyPEM, err := auth.KeyPEM()
	if err != nil {
		return nil, false, err
	}
	if err := mtls.WriteNew(dir, "ca.key", keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := mtls.WriteNew(dir, "ca.pem", auth.CertPEM(), 0o644); err != nil {
		return nil, false, err
	}
	return auth, true, nil
}
