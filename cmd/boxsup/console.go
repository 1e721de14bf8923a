package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/boxsup/boxsup/layout"
)

// consolePollInterval is how often a followed console log is read. The CLI
// polls a file (the supervisor itself never polls): 50 ms keeps output
// prompt for a human at negligible cost.
const consolePollInterval = 50 * time.Millisecond

// consoleFollower copies a box's console log to w from its beginning, as it
// grows, until finish.
type consoleFollower struct {
	path string
	w    io.Writer
	f    *os.File
	err  error // set by the loop; read after done
	stop chan struct{}
	done chan struct{}
}

// followConsole starts copying path to w every consolePollInterval.
func followConsole(path string, w io.Writer) *consoleFollower {
	c := &consoleFollower{path: path, w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

func (c *consoleFollower) loop() {
	defer close(c.done)
	defer c.close()
	t := time.NewTicker(consolePollInterval)
	defer t.Stop()
	for {
		c.pump()
		select {
		case <-c.stop:
			c.pump() // what the box wrote before it exited
			return
		case <-t.C:
		}
	}
}

// finish copies what is left, stops following, and returns why the log
// could not be opened, if it was refused.
func (c *consoleFollower) finish() error {
	close(c.stop)
	<-c.done
	return c.err
}

// pump copies whatever was appended since the last call. A log that does
// not exist yet is not an error: the box has not written anything.
func (c *consoleFollower) pump() {
	if c.f == nil {
		if c.err != nil {
			return
		}
		f, err := layout.OpenRead(c.path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				c.err = err // a planted link or another user's file: refused, said once
			}
			return
		}
		c.f = f
	}
	_, _ = io.Copy(c.w, c.f)
}

func (c *consoleFollower) close() {
	if c.f != nil {
		_ = c.f.Close()
	}
}

// copyConsole writes the whole console log at path to w; a missing log is
// an empty one.
func copyConsole(path string, w io.Writer) error {
	f, err := layout.OpenRead(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
