package declare

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// maxSecretFileSize bounds a secret file: a secret is a key or a token, not
// a data set, and the value travels in the shim's spec.
const maxSecretFileSize = 64 << 10

// resolveSecrets reads each secret's value from its source. Errors name the
// variable and the source, never the value.
func resolveSecrets(b *DeclaredBox, secrets map[string]secretDoc, dir string, at pos, opts Options) error {
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		src := secrets[name]
		var value, from string
		switch {
		case src.Env != "" && src.File != "":
			return errorAt(at, "box %s: secret %s: give env or file, not both", b.ID(), name)
		case src.Env != "":
			v, ok := opts.LookupEnv(src.Env)
			if !ok {
				return errorAt(at, "box %s: secret %s: environment variable %s is not set", b.ID(), name, src.Env)
			}
			value, from = v, "env "+src.Env
		case src.File != "":
			path := src.File
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			v, err := opts.ReadSecretFile(path)
			if err != nil {
				return errorAt(at, "box %s: secret %s: %v", b.ID(), name, err)
			}
			value, from = v, "file "+path
		default:
			return errorAt(at, "box %s: secret %s: want env: VARIABLE or file: PATH (values are never written in the file)", b.ID(), name)
		}
		b.Start.Spec.Secrets = append(b.Start.Spec.Secrets, messages.SecretVar{Name: name, Value: messages.NewSecret(value)})
		b.Secrets = append(b.Secrets, SecretSource{Name: name, From: from})
	}
	return nil
}

// ReadSecretFile reads a secret's value from path: a regular file (not
// followed if it is a symbolic link), owned by this user or root, not
// writable by group or others (or anyone could plant the value), at most
// 64 KiB. One trailing newline is dropped, so that `echo token > file`
// gives "token". Errors never quote the content.
func ReadSecretFile(path string) (string, error) {
	data, err := readTrustedFile(path, maxSecretFileSize)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(data), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// readTrustedFile reads a regular file that only this user or root can
// have written, of at most limit bytes.
func readTrustedFile(path string, limit int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, messages.Errorf(messages.ErrBadSpec, "%s is a symbolic link; name the file itself", path)
		}
		return nil, messages.Errorf(messages.ErrBadSpec, "%s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, messages.Errorf(messages.ErrBadSpec, "%s is not a regular file", path)
	}
	if uid := uint32(os.Geteuid()); st.Uid != uid && st.Uid != 0 {
		return nil, messages.Errorf(messages.ErrBadSpec, "%s is owned by uid %d, not by you (uid %d) or root: fix with chown", path, st.Uid, uid)
	}
	if st.Mode&0o022 != 0 {
		return nil, messages.Errorf(messages.ErrBadSpec, "%s is writable by group or others (mode %#o): fix with chmod go-w", path, st.Mode&0o777)
	}
	if st.Size > limit {
		return nil, messages.Errorf(messages.ErrBadSpec, "%s is larger than %d bytes", path, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, messages.Errorf(messages.ErrBadSpec, "%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
