// Package layout owns boxsup's files: the home directory and its lock, each
// box's directory and the paths inside it, box-ID validation, crash-safe JSON
// records (temp file + fsync + rename + directory fsync) and short directories
// for Unix sockets whose real path would not fit in sun_path.
//
// The home is untrusted input (see trust.go): Open canonicalises it and
// refuses, with messages.ErrUnsafeHome, a home, boxes directory or box
// directory that another user controls. Files under a box directory are
// opened relative to a directory descriptor without following symbolic
// links (see openat.go), and records another user wrote are refused.
//
// Directories are created 0700 and files that may hold secrets 0600, whatever
// the process umask. layout knows nothing about processes.
package layout
