package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The errors of Load. Compare with errors.Is.
var (
	// ErrUnsafeFile: a file is a symlink or not a regular file, is owned by
	// neither the caller nor root, is writable by others, or is a key
	// readable by others.
	ErrUnsafeFile = errors.New("mtls: unsafe file")
	// ErrBadCertificate: a file does not parse, the key does not match the
	// certificate, or the certificate does not chain to the CA.
	ErrBadCertificate = errors.New("mtls: bad certificate")
)

// maxFileSize bounds a PEM file; real ones are a few KiB.
const maxFileSize = 1 << 20

// Files names the PEM files of one member or client.
type Files struct {
	CA   string // the cluster CA's certificate: the only trust anchor
	Cert string // this member's certificate, signed by the CA
	Key  string // its private key (mode 0600 or stricter)
}

// Material is loaded, verified key material, ready to make TLS configs.
type Material struct {
	pool *x509.CertPool
	cert tls.Certificate
	leaf *x509.Certificate
}

// Leaf returns the certificate this member presents.
func (m *Material) Leaf() *x509.Certificate { return m.leaf }

// Load reads and checks the three files. It verifies here, not at the first
// connection, that the key matches the certificate and that the certificate
// chains to the CA, so a misconfigured member fails at start.
func Load(f Files) (*Material, error) {
	caPEM, err := readTrusted(f.CA, false)
	if err != nil {
		return nil, err
	}
	certPEM, err := readTrusted(f.Cert, false)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readTrusted(f.Key, true)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrBadCertificate, f.CA)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error never quotes the key.
		return nil, fmt.Errorf("%w: %s and %s: %v", ErrBadCertificate, f.Cert, f.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCertificate, f.Cert, err)
	}
	cert.Leaf = leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: %s does not chain to the CA in %s: %v", ErrBadCertificate, f.Cert, f.CA, err)
	}
	return &Material{pool: pool, cert: cert, leaf: leaf}, nil
}

// readTrusted reads a small file that must not have been planted or
// tampered with by another user: no symlink, a regular file, owned by the
// caller or root, not writable by group or others, and for a key not
// readable by them either (as ssh treats private keys).
func readTrusted(path string, secret bool) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: a CA, certificate and key file are all required", ErrUnsafeFile)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%w: %s is a symlink", ErrUnsafeFile, path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	file := os.NewFile(uintptr(fd), path)
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrUnsafeFile, path)
	case st.Uid != uint32(os.Geteuid()) && st.Uid != 0:
		return nil, fmt.Errorf("%w: %s is owned by uid %d, neither this user nor root", ErrUnsafeFile, path, st.Uid)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("%w: %s is writable by group or others (mode %#o)", ErrUnsafeFile, path, st.Mode&0o777)
	case secret && st.Mode&0o077 != 0:
		return nil, fmt.Errorf("%w: private key %s is accessible by group or others (mode %#o; chmod 600)", ErrUnsafeFile, path, st.Mode&0o777)
	case st.Size > maxFileSize:
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrUnsafeFile, path, st.Size, maxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
