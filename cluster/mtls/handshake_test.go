package mtls_test

import (
	"crypto/tls"
	"io"
	"testing"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/internal/testpki"
)

// serveOnce accepts one TLS connection with cfg, completes the handshake
// and echoes one byte. It returns the server side's handshake error.
func serveOnce(t *testing.T, cfg *tls.Config) (addr string, result <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if err := c.(*tls.Conn).Handshake(); err != nil {
			done <- err
			return
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			done <- err
			return
		}
		_, err = c.Write(b)
		done <- err
	}()
	return ln.Addr().String(), done
}

// exchange dials addr with cfg and exchanges one byte. With TLS 1.3 a
// refused client certificate shows on the client only at the first read.
func exchange(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{7}); err != nil {
		return err
	}
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	return err
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "cluster-ca")
	other := testpki.NewCA(t, "other-ca")
	nodeA := ca.Material(t, "node-a", "127.0.0.1")
	nodeB := ca.Material(t, "node-b", "127.0.0.1")
	wrongHost := ca.Material(t, "node-c", "node-c.example")
	foreign := other.Material(t, "intruder", "127.0.0.1")

	noCert := nodeB.ClientConfig()
	noCert.Certificates = nil

	cases := []struct {
		name         string
		server       *mtls.Material
		client       *tls.Config
		serverRefuse bool // the server side must fail the handshake
	}{
		{"member to member", nodeA, nodeB.ClientConfig(), false},
		{"client certificate from another CA", nodeA, foreign.ClientConfig(), true},
		{"no client certificate", nodeA, noCert, true},
		{"server from another CA", foreign, nodeB.ClientConfig(), false},
		{"server certificate for another host", wrongHost, nodeB.ClientConfig(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr, serverErr := serveOnce(t, c.server.ServerConfig())
			err := exchange(addr, c.client)
			srvErr := <-serverErr
			if c.name == "member to member" {
				if err != nil || srvErr != nil {
					t.Fatalf("refused a valid peer: client %v, server %v", err, srvErr)
				}
				return
			}
			if err == nil {
				t.Fatalf("the client completed an exchange it should have been refused")
			}
			if c.serverRefuse && srvErr == nil {
				t.Fatalf("the server accepted the peer")
			}
		})
	}
}

func TestClientConfigNeedsNoServerName(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "cluster-ca")
	m := ca.Material(t, "n", "127.0.0.1")
	if m.ClientConfig().ServerName != "" || m.ClientConfig().InsecureSkipVerify {
		t.Fatal("the client config must verify the dialled host")
	}
	if got := m.ServerConfig().ClientAuth; got != tls.RequireAndVerifyClientCert {
		t.Fatalf("ClientAuth = %v", got)
	}
}
