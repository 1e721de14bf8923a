// Package testpki writes throw-away cluster CAs and certificates for tests.
package testpki

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/boxsup/boxsup/cluster/mtls"
)

// CA is a test authority whose files live in Dir.
type CA struct {
	Dir  string
	auth *mtls.Authority
}

// NewCA makes a CA in a new temporary directory and writes ca.pem there.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	auth, err := mtls.NewAuthority(name, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := mtls.WriteNew(dir, "ca.pem", auth.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &CA{Dir: dir, auth: auth}
}

// Authority returns the CA itself.
func (c *CA) Authority() *mtls.Authority { return c.auth }

// Issue writes NAME.pem and NAME.key (0600) for an endpoint valid for hosts
// and returns their file names, with this CA as the trust anchor.
func (c *CA) Issue(t testing.TB, name string, hosts ...string) mtls.Files {
	t.Helper()
	cert, key, err := c.auth.Issue(name, hosts, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteNew(c.Dir, name+".pem", cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteNew(c.Dir, name+".key", key, 0o600); err != nil {
		t.Fatal(err)
	}
	return mtls.Files{CA: filepath.Join(c.Dir, "ca.pem"), Cert: filepath.Join(c.Dir, name+".pem"), Key: filepath.Join(c.Dir, name+".key")}
}

// Material issues and loads a certificate in one step.
func (c *CA) Material(t testing.TB, name string, hosts ...string) *mtls.Material {
	t.Helper()
	m, err := mtls.Load(c.Issue(t, name, hosts...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
