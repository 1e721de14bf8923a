package main

import (
	"context"
	"sync"

	"github.com/boxsup/boxsup/boxlog"
)

// consoleFollower copies a box's console log to stdout, from its beginning
// and as it grows, until finish.
type consoleFollower struct {
	ended     chan struct{}
	endedOnce sync.Once
	done      chan struct{}
	err       error
}

// followConsole starts copying the console log at path to a.stdout.
func (a *app) followConsole(path string) *consoleFollower {
	c := &consoleFollower{ended: make(chan struct{}), done: make(chan struct{})}
	open, w := a.hooks.consoleOpen, a.stdout
	go func() {
		defer close(c.done)
		if open != nil {
			open(c.ended)
		}
		c.err = boxlog.Copy(context.Background(), w, path, boxlog.Options{Follow: true, Ended: c.ended})
	}()
	return c
}

// finish copies what is left, once the box is at rest, and stops
// following. It returns why the copy stopped early, if it did. It may be
// called more than once.
func (c *consoleFollower) finish() error {
	c.endedOnce.Do(func() { close(c.ended) })
	<-c.done
	return c.err
}
