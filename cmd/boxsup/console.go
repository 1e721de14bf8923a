package main

import (
	"context"
	"io"

	"github.com/boxsup/boxsup/boxlog"
)

// consoleFollower copies a box's console log to w, from its beginning and
// as it grows, until finish.
type consoleFollower struct {
	ended chan struct{}
	done  chan struct{}
	err   error
}

// followConsole starts copying the console log at path to w.
func followConsole(path string, w io.Writer) *consoleFollower {
	c := &consoleFollower{ended: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = boxlog.Copy(context.Background(), w, path, boxlog.Options{Follow: true, Ended: c.ended})
	}()
	return c
}

// finish copies what is left, once the box is at rest, and stops
// following. It returns why the copy stopped early, if it did.
func (c *consoleFollower) finish() error {
	close(c.ended)
	<-c.done
	return c.err
}
