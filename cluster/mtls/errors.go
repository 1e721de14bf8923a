package mtls

import (
	"errors"
	"fmt"
)

// ErrNoTransportSecurity: neither TLS material nor an explicit insecure
// opt-in was given, or both were.
var ErrNoTransportSecurity = errors.New("mtls: cluster transport security not configured")

var (
	errNeither = fmt.Errorf("%w: give the CA, certificate and key files (or, for a test network only, the insecure option)", ErrNoTransportSecurity)
	errBoth    = fmt.Errorf("%w: TLS files and the insecure option exclude each other", ErrNoTransportSecurity)
)
