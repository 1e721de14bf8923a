package mtls

import (
	"crypto/tls"

	"github.com/asynkron/protoactor-go/remote"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// InsecureWarning is logged at every start of a member or client that runs
// remote in plain text.
const InsecureWarning = "insecure cluster transport: remote traffic is plain text and unauthenticated; " +
	"box specs (secrets included) cross the network readable, and anyone who reaches the port can control every box. " +
	"Use it only on a loopback or an isolated test network"

// ServerConfig is the TLS config of a member's remote server: TLS 1.3, and a
// client certificate that chains to the CA is required.
func (m *Material) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    m.pool,
	}
}

// ClientConfig is the TLS config for dialling a member: TLS 1.3, the server
// must chain to the CA and name the dialled host, and this side presents
// its own certificate. ServerName is left empty: gRPC fills it from the
// address it dials.
func (m *Material) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.pool,
	}
}

// Transport selects how protoactor remote is secured: exactly one of
// Material (mutual TLS) and Insecure (plain text, explicitly asked for).
type Transport struct {
	Material *Material
	Insecure bool
}

// RemoteOptions returns the remote options that secure every connection:
// the server's credentials and the dial credentials. protoactor's default
// is plain text, so a member must always pass these. Without Material and
// without Insecure it is an error; with Insecure it logs InsecureWarning.
func (t Transport) RemoteOptions(log *logrus.Logger) ([]remote.ConfigOption, error) {
	switch {
	case t.Material != nil && t.Insecure:
		return nil, errBoth
	case t.Material != nil:
		return []remote.ConfigOption{
			remote.WithServerOptions(grpc.Creds(credentials.NewTLS(t.Material.ServerConfig()))),
			remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(t.Material.ClientConfig()))),
		}, nil
	case t.Insecure:
		if log != nil {
			log.Warn(InsecureWarning)
		}
		return []remote.ConfigOption{
			remote.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
		}, nil
	}
	return nil, errNeither
}
