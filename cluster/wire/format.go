package wire

import (
	"fmt"
	"log/slog"
)

// Format prints an Envelope without its payload, for every fmt verb: the
// payload of a StartBox holds secrets. (The generated String method still
// prints everything; nothing in boxsup calls it.)
func (x *Envelope) Format(f fmt.State, _ rune) {
	if x == nil {
		_, _ = fmt.Fprint(f, "wire.Envelope(nil)")
		return
	}
	_, _ = fmt.Fprintf(f, "wire.Envelope{type=%q version=%d payload=[%d bytes not shown]}",
		truncate(x.GetType(), 64), x.GetVersion(), len(x.GetPayload()))
}

// LogValue keeps the payload out of slog records, which is how protoactor
// logs dead letters and supervision failures.
func (x *Envelope) LogValue() slog.Value {
	if x == nil {
		return slog.StringValue("wire.Envelope(nil)")
	}
	return slog.GroupValue(
		slog.String("type", truncate(x.GetType(), 64)),
		slog.Uint64("version", uint64(x.GetVersion())),
		slog.Int("payload_bytes", len(x.GetPayload())),
	)
}
