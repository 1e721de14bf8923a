package actors

import (
	"context"
	"log/slog"
)

// remoteNoise lists protoactor remote's messages that report an ordinary
// event of a cluster at error level: a client command that ends closes its
// connection, and the member's endpoint writer logs it as an error. The
// member reports losses itself (OnEndpointLost), as "unknown", never as
// errors; these are kept at debug.
var remoteNoise = map[string]bool{
	"EndpointWriter lost connection": true,
}

// quietRemote lowers remoteNoise to debug.
type quietRemote struct{ slog.Handler }

func (q quietRemote) Handle(ctx context.Context, r slog.Record) error {
	if remoteNoise[r.Message] && r.Level > slog.LevelDebug {
		if !q.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietRemote) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietRemote{q.Handler.WithAttrs(attrs)}
}

func (q quietRemote) WithGroup(name string) slog.Handler {
	return quietRemote{q.Handler.WithGroup(name)}
}
