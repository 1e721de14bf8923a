package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/cluster/client"
	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// clusterConfigEnv names a cluster configuration file, as --cluster-config.
const clusterConfigEnv = "BOXSUP_CLUSTER_CONFIG"

// clusterFlags are the global flags that reach a cluster: every command
// works on the whole cluster with them, and supervise joins it. A file
// (--cluster-config, or $BOXSUP_CLUSTER_CONFIG) can hold the same
// settings; a flag given overrides the file.
type clusterFlags struct {
	file     string
	Name     string   `yaml:"cluster"`
	Etcd     []string `yaml:"etcd"`
	CA       string   `yaml:"tls_ca"`
	Cert     string   `yaml:"tls_cert"`
	Key      string   `yaml:"tls_key"`
	EtcdCA   string   `yaml:"etcd_ca"`
	EtcdCert string   `yaml:"etcd_cert"`
	EtcdKey  string   `yaml:"etcd_key"`
	Insecure bool     `yaml:"insecure"`
	Listen   string   `yaml:"listen"`
}

func (c *clusterFlags) register(pf *pflag.FlagSet) {
	pf.StringVar(&c.file, "cluster-config", "", "file with the cluster settings below, YAML or JSON (default $"+clusterConfigEnv+")")
	pf.StringVar(&c.Name, "cluster", "", "work on the whole boxsup cluster NAME (with --etcd and the TLS files); supervise joins it")
	pf.StringSliceVar(&c.Etcd, "etcd", nil, "the cluster's etcd client URLs, comma-separated")
	pf.StringVar(&c.CA, "tls-ca", "", "the cluster CA certificate (PEM)")
	pf.StringVar(&c.Cert, "tls-cert", "", "this endpoint's certificate, signed by the cluster CA (PEM)")
	pf.StringVar(&c.Key, "tls-key", "", "this endpoint's private key (PEM, mode 0600)")
	pf.StringVar(&c.EtcdCA, "etcd-ca", "", "CA of etcd's certificates, for https:// endpoints (with --etcd-cert and --etcd-key)")
	pf.StringVar(&c.EtcdCert, "etcd-cert", "", "client certificate for etcd")
	pf.StringVar(&c.EtcdKey, "etcd-key", "", "client key for etcd (mode 0600)")
	pf.BoolVar(&c.Insecure, "insecure-cluster", false, "plain-text, unauthenticated cluster traffic (test networks only; warned at every start)")
	pf.StringVar(&c.Listen, "cluster-listen", "", "HOST:PORT where this client listens for the members' answers (default: the local address that routes to etcd, any port)")
}

// resolve merges the file (if any) under the flags given; it returns nil
// when no cluster is configured.
func (c *clusterFlags) resolve(fs *pflag.FlagSet) (*clusterFlags, error) {
	path := c.file
	if path == "" {
		path = os.Getenv(clusterConfigEnv)
	}
	out := &clusterFlags{}
	if path != "" {
		b, err := mtls.ReadTrusted(path, false)
		if err != nil {
			return nil, usageError(fmt.Errorf("--cluster-config: %w", err))
		}
		if err := yaml.UnmarshalWithOptions(b, out, yaml.Strict()); err != nil {
			return nil, usageError(fmt.Errorf("--cluster-config %s: %v", path, err))
		}
	}
	set := func(name string, dst *string, v string) {
		if fs.Changed(name) {
			*dst = v
		}
	}
	set("cluster", &out.Name, c.Name)
	set("tls-ca", &out.CA, c.CA)
	set("tls-cert", &out.Cert, c.Cert)
	set("tls-key", &out.Key, c.Key)
	set("etcd-ca", &out.EtcdCA, c.EtcdCA)
	set("etcd-cert", &out.EtcdCert, c.EtcdCert)
	set("etcd-key", &out.EtcdKey, c.EtcdKey)
	set("cluster-listen", &out.Listen, c.Listen)
	if fs.Changed("etcd") {
		out.Etcd = c.Etcd
	}
	if fs.Changed("insecure-cluster") {
		out.Insecure = c.Insecure
	}
	if out.Name == "" {
		if path != "" || len(out.Etcd) > 0 || out.CA != "" || out.Insecure {
			return nil, usageError(errors.New("cluster settings without a cluster name: give --cluster NAME (or cluster: in the file)"))
		}
		return nil, nil
	}
	if len(out.Etcd) == 0 {
		return nil, usageError(fmt.Errorf("cluster %q: give its etcd endpoints (--etcd URL[,URL])", out.Name))
	}
	return out, nil
}

// transport loads the TLS material, or takes the insecure opt-in.
func (c *clusterFlags) transport() (mtls.Transport, error) {
	tlsGiven := c.CA != "" || c.Cert != "" || c.Key != ""
	switch {
	case c.Insecure && tlsGiven:
		return mtls.Transport{}, usageError(errors.New("--insecure-cluster and the TLS files exclude each other"))
	case c.Insecure:
		return mtls.Transport{Insecure: true}, nil
	case !tlsGiven:
		return mtls.Transport{}, usageError(errors.New("the cluster needs --tls-ca, --tls-cert and --tls-key (or, on a test network only, --insecure-cluster)"))
	}
	m, err := mtls.Load(mtls.Files{CA: c.CA, Cert: c.Cert, Key: c.Key})
	if err != nil {
		return mtls.Transport{}, err
	}
	return mtls.Transport{Material: m}, nil
}

// etcdTLS loads etcd's client TLS, when given.
func (c *clusterFlags) etcdTLS() (*tls.Config, error) {
	if c.EtcdCA == "" && c.EtcdCert == "" && c.EtcdKey == "" {
		for _, e := range c.Etcd {
			if strings.HasPrefix(e, "https://") {
				return nil, usageError(fmt.Errorf("etcd endpoint %s is https: give --etcd-ca, --etcd-cert and --etcd-key", e))
			}
		}
		return nil, nil
	}
	m, err := mtls.Load(mtls.Files{CA: c.EtcdCA, Cert: c.EtcdCert, Key: c.EtcdKey})
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	cfg := m.ClientConfig()
	cfg.MinVersion = tls.VersionTLS12 // etcd's own default floor
	return cfg, nil
}

// clusterClient connects to the cluster as a client.
func (a *app) clusterClient(ctx context.Context) (*client.Client, error) {
	c := a.cluster
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	etcdTLS, err := c.etcdTLS()
	if err != nil {
		return nil, err
	}
	return client.New(ctx, client.Config{
		Cluster: c.Name, Etcd: c.Etcd, EtcdTLS: etcdTLS, Transport: tr, Listen: c.Listen, Logger: a.log,
	})
}

// clusterOnly refuses a flag that needs a cluster when none is configured.
func (a *app) clusterOnly(flag string) error {
	if a.cluster == nil {
		return usageError(messages.Errorf(messages.ErrBadSpec, "%s needs a cluster (--cluster NAME --etcd URL, or --cluster-config FILE)", flag))
	}
	return nil
}

// connectCluster is connect for a configured cluster: every command goes
// to the whole cluster through a client.
func (a *app) connectCluster(ctx context.Context) (control.Backend, error) {
	if a.shim != "" {
		return nil, usageError(messages.Errorf(messages.ErrBadSpec, "--shim cannot be used with a cluster: each member starts boxes with its own shim"))
	}
	return a.clusterClient(ctx)
}
