package main

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/cluster/client"
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

// remoteConsoleDrain bounds how long a foreground run waits for the rest of
// a remote box's output once the box is at rest.
const remoteConsoleDrain = 30 * time.Second

// followRemoteConsole copies the console of a box on a cluster member to
// w, from its beginning, until the member ends the read (the box is at
// rest) or finish gives up after remoteConsoleDrain.
func followRemoteConsole(c *client.Client, id string, w io.Writer) *consoleFollower {
	f := &consoleFollower{ended: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(f.done)
		defer cancel()
		r, err := c.Logs(ctx, id, actors.LogOptions{Follow: true})
		if err != nil {
			f.err = err
			return
		}
		defer r.Close()
		if _, err := io.Copy(w, r); err != nil && ctx.Err() == nil {
			f.err = err
		}
	}()
	go func() {
		select {
		case <-f.done:
		case <-f.ended:
			select {
			case <-f.done:
			case <-time.After(remoteConsoleDrain):
				cancel()
			}
		}
	}()
	return f
}
