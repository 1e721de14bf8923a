// Package boxlog reads a box's console log: the records a shim writes to
// console.log, capped by size and rotated into console.log.1, .2, ...
// (docs/SHIM-PROTOCOL.md, "Logs").
//
// A record is one line of the CRI log format that containerd, CRI-O and
// conmon write:
//
//	2026-01-02T03:04:05.123456789Z stdout F hello
//
// the time the shim read the text, the stream (stdout or stderr), F for
// text that ends a line of the guest's or P for a part that the stream's
// next record continues, and the text. Copy and Open turn records back into
// the guest's output, optionally with each line's time, only the lines
// since a time, only the last lines or only one stream, and can follow the
// log as it grows.
//
// The reader needs nothing but the files: it holds no supervisor state, so
// it works the same after a supervisor restart, for any box whose shim
// follows the protocol. It reads across rotation without losing or
// repeating a line, as long as it does not fall behind by more than the
// files the shim keeps (a log rotated away before it was read is gone, as
// with any capped log).
//
// It reads untrusted files defensively: every file is opened through
// layout's checked opens, never through a symbolic link, and must be a
// regular file of this user or root that nobody else can write.
package boxlog
