package declare

import (
	"path/filepath"
)

// maxFileSize bounds a boxes file (a thousand boxes take a few hundred KiB).
const maxFileSize = 16 << 20

// LoadFile reads and validates the boxes file at path. The file must be a
// regular file owned by this user or root and writable by nobody else: it
// says which commands run as this user. Relative paths in it (work_dir,
// secret files) are taken from its directory.
func LoadFile(path string, opts Options) (*BoxesFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := readTrustedFile(abs, maxFileSize)
	if err != nil {
		return nil, err
	}
	return ParseFile(abs, data, opts)
}
