package actors

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"io"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

// Bounds of a log reader served to another host.
const (
	// logChunkMax bounds the bytes of one reply (its JSON grows by a third
	// in base64; wire.MaxPayload is far above).
	logChunkMax = 512 << 10
	// logWait is how long a request waits for new output while following
	// before it answers with an empty chunk.
	logWait = 2 * time.Second
	// logIdle closes a reader nobody read from for this long.
	logIdle = time.Minute
)

// logServer serves box logs to other hosts, one open reader per cursor,
// pulled chunk by chunk (messages.LogsRequest).
type logServer struct {
	sup *Supervisor
	mu  sync.Mutex
	all map[string]*logCursor
}

// logCursor is one open reader and the goroutine that drains it.
type logCursor struct {
	id     string
	cancel context.CancelFunc
	chunks chan []byte
	done   chan struct{} // closed when the reader ended; err says how
	err    error
	busy   sync.Mutex // one request reads at a time
	last   time.Time  // guarded by logServer.mu
}

func newLogServer(s *Supervisor) *logServer {
	return &logServer{sup: s, all: map[string]*logCursor{}}
}

// serve answers req on a helper goroutine (it may wait for output); the
// reply goes to sender in an envelope when sender is on another host.
func (l *logServer) serve(sender *actor.PID, req *messages.LogsRequest) {
	c := l.sup.core
	c.goHelper(func() {
		chunk := l.read(req)
		if sender == nil {
			return
		}
		if sender.GetAddress() != c.system.Address() {
			if env, err := wire.Encode(chunk); err == nil {
				c.root.Send(sender, env)
			}
			return
		}
		c.root.Send(sender, chunk)
	})
}

// read opens a cursor or reads on from one.
func (l *logServer) read(req *messages.LogsRequest) *messages.LogsChunk {
	l.sweep()
	var cur *logCursor
	if req.Cursor == "" {
		var err error
		if cur, err = l.open(req); err != nil {
			return &messages.LogsChunk{Err: messages.AsError(err), EOF: true}
		}
	} else {
		l.mu.Lock()
		cur = l.all[req.Cursor]
		l.mu.Unlock()
		if cur == nil {
			return &messages.LogsChunk{Cursor: req.Cursor, EOF: true,
				Err: messages.Errorf(messages.ErrNotFound, "log cursor %q expired or unknown", req.Cursor)}
		}
	}
	cur.busy.Lock()
	defer cur.busy.Unlock()
	out := &messages.LogsChunk{Cursor: cur.id}
	t := time.NewTimer(logWait)
	defer t.Stop()
	select { // the first piece, or the end, or nothing new for a while
	case b := <-cur.chunks:
		out.Data = append(out.Data, b...)
	case <-cur.done:
	case <-t.C:
	}
	for len(out.Data) < logChunkMax {
		select {
		case b := <-cur.chunks:
			out.Data = append(out.Data, b...)
			continue
		default:
		}
		break
	}
	if len(out.Data) == 0 {
		select {
		case <-cur.done:
			if len(cur.chunks) == 0 {
				out.EOF, out.Err = true, messages.AsError(cur.err)
				l.drop(cur.id)
			}
		default:
		}
	}
	l.mu.Lock()
	cur.last = time.Now()
	l.mu.Unlock()
	return out
}

// open starts a reader (Supervisor.Logs) and its drain.
func (l *logServer) open(req *messages.LogsRequest) (*logCursor, error) {
	opts := LogOptions{Follow: req.Follow, Tail: req.Tail, Since: req.Since, Stream: boxlog.Stream(req.Stream), Timestamps: req.Timestamps}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := l.sup.Logs(ctx, req.ID, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	cur := &logCursor{id: hex.EncodeToString(b), cancel: cancel, chunks: make(chan []byte, 16), done: make(chan struct{}), last: time.Now()}
	l.mu.Lock()
	l.all[cur.id] = cur
	l.mu.Unlock()
	l.sup.core.goHelper(func() {
		defer close(cur.done)
		defer r.Close()
		for {
			buf := make([]byte, 64<<10)
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case cur.chunks <- buf[:n]:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					cur.err = err
				}
				return
			}
		}
	})
	return cur, nil
}

// drop closes a cursor.
func (l *logServer) drop(id string) {
	l.mu.Lock()
	cur := l.all[id]
	delete(l.all, id)
	l.mu.Unlock()
	if cur != nil {
		cur.cancel()
	}
}

// sweep closes the readers nobody read from for logIdle.
func (l *logServer) sweep() {
	l.mu.Lock()
	var idle []string
	for id, cur := range l.all {
		if time.Since(cur.last) > logIdle {
			idle = append(idle, id)
		}
	}
	l.mu.Unlock()
	for _, id := range idle {
		l.drop(id)
	}
}

// closeAll closes every reader (the member leaves).
func (l *logServer) closeAll() {
	l.mu.Lock()
	ids := make([]string, 0, len(l.all))
	for id := range l.all {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.drop(id)
	}
}
