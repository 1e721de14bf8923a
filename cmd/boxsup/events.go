package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

func (a *app) eventsCommand() *cobra.Command {
	var filters []string
	var since, until string
	format := formatJSON
	cmd := &cobra.Command{
		Use:   "events [--filter KEY=VALUE]... [--since WHEN] [--until WHEN] [--format json|table]",
		Short: "Stream lifecycle events from the running supervisor",
		Long: "Print the lifecycle events (BoxStarted, BoxReady, BoxExited, BoxRestarting, BoxAdopted,\n" +
			"BoxFailed, BoxRemoved) of the `boxsup supervise` serving the home, as they happen, one\n" +
			"JSON object per line with its kind, seq (numbered from 1 by that supervisor), box_id,\n" +
			"at, generation, state and labels, plus the kind's own fields. It needs a running\n" +
			"boxsup supervise: without one it fails and says so. SIGINT or SIGTERM end it (exit 0).\n\n" +
			"--filter narrows the stream (repeatable; filters of one key are or'ed, different keys\n" +
			"and'ed):\n" +
			"  box=ID           the box ID (id=ID too)\n" +
			"  label=SELECTOR   a Kubernetes label selector, as in ps\n" +
			"  kind=KIND        an event kind, e.g. kind=BoxExited\n\n" +
			"--since WHEN replays the events from then on before the live ones, with no gap and no\n" +
			"duplicate between the two. The supervisor keeps its last 10000 events in memory\n" +
			"only: when WHEN reaches before what it still holds (or before it started), a line on\n" +
			"standard error says from when the events are complete, and the JSON stream carries\n" +
			"an EventsLagged object. --until WHEN ends the stream when that time comes (at once,\n" +
			"after the replay, when it is past). WHEN is an RFC 3339 time or a duration before\n" +
			"now (10m, 1h30m), as docker events reads them.\n\n" +
			"--format table prints TIME, BOX, KIND, STATE and DETAIL columns for people.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			sel, err := parseEventFilters(filters)
			if err != nil {
				return err
			}
			now := time.Now()
			if sel.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if sel.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			if !sel.Since.IsZero() && !sel.Until.IsZero() && sel.Until.Before(sel.Since) {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--until %s is before --since %s", until, since))
			}
			return a.followEvents(cmd, sel, format)
		},
	}
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "box=ID, label=SELECTOR or kind=KIND; repeatable")
	cmd.Flags().StringVar(&since, "since", "", "replay events from this time on (RFC 3339, or a duration before now)")
	cmd.Flags().StringVar(&until, "until", "", "end the stream at this time (RFC 3339, or a duration before now)")
	cmd.Flags().StringVar(&format, "format", formatJSON, "output format: json (one object per line)|table")
	return cmd
}

// followEvents streams the events sel selects until the stream ends
// (--until), the command is interrupted (exit 0) or the supervisor goes
// away (an error).
func (a *app) followEvents(cmd *cobra.Command, sel control.Selection, format string) error {
	ctx := cmd.Context()
	var b control.Backend
	var err error
	if a.cluster != nil {
		b, err = a.connectCluster(ctx) // every member's events
	} else {
		b, err = control.Connect(ctx, a.home, control.ConnectOptions{Config: a.config(), RequireServer: true})
	}
	if err != nil {
		return err
	}
	defer b.Close()
	p := &eventPrinter{w: a.stdout, stderr: a.stderr, format: format}
	if format == formatTable {
		// TIME is as wide as a local time, KIND and STATE as their longest
		// values (BoxRestarting, restarting); BOX grows with the IDs.
		widths := []int{len(timeText(time.Now())), 8, len("BoxRestarting"), len(messages.StateRestarting), 0}
		if p.table, err = newStreamTable(a.stdout, []string{"TIME", "BOX", "KIND", "STATE", "DETAIL"}, widths); err != nil {
			return err
		}
	}
	err = b.Events(ctx, sel, p.print)
	if perr := p.error(); perr != nil {
		return perr
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && isContextErr(err):
		return nil // SIGINT or SIGTERM: the stream ends as asked
	case errors.Is(err, messages.ErrShuttingDown):
		return fmt.Errorf("the event stream ended: the supervisor went away (%w)", err)
	}
	return err
}

// eventPrinter writes events as they arrive, one line each, flushed at
// once (a pipe reader sees each event when it happens).
type eventPrinter struct {
	w, stderr io.Writer
	format    string
	table     *streamTable

	mu  sync.Mutex
	err error
}

func (p *eventPrinter) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *eventPrinter) print(ev messages.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if lag, ok := ev.(messages.EventsLagged); ok {
		p.lagged(lag)
	}
	if p.format == formatTable {
		h := ev.Header()
		box := orDash(h.BoxID)
		p.err = p.table.row(timeText(h.At), box, ev.Kind(), orDash(string(h.State)), eventDetail(ev))
		return
	}
	line, err := eventJSON(ev)
	if err == nil {
		_, err = p.w.Write(append(line, '\n'))
	}
	p.err = err
}

// lagged tells standard error that the stream is not complete.
func (p *eventPrinter) lagged(lag messages.EventsLagged) {
	switch {
	case !lag.At.IsZero() && lag.Dropped == 0:
		fmt.Fprintf(p.stderr, "boxsup: events before %s are not known: the supervisor started then\n", lag.At.Local().Format(time.RFC3339Nano))
	case !lag.At.IsZero():
		fmt.Fprintf(p.stderr, "boxsup: events before %s are not known: %d left the supervisor's history (it keeps its last %d)\n",
			lag.At.Local().Format(time.RFC3339Nano), lag.Dropped, actors.DefaultEventHistory)
	default:
		fmt.Fprintf(p.stderr, "boxsup: %d events were lost: this stream fell behind\n", lag.Dropped)
	}
}

// eventJSON is one event's JSON line: its own fields and its kind.
func eventJSON(ev messages.Event) ([]byte, error) {
	raw, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	kind, _ := json.Marshal(ev.Kind())
	fields["kind"] = kind
	return json.Marshal(fields)
}

// eventDetail is the DETAIL cell of an event.
func eventDetail(ev messages.Event) string {
	switch e := ev.(type) {
	case messages.BoxStarted:
		return fmt.Sprintf("pid %d", e.PID)
	case messages.BoxReady:
		return fmt.Sprintf("pid %d, ready in %v", e.PID, e.Took.Round(time.Millisecond))
	case messages.BoxAdopted:
		return fmt.Sprintf("pid %d", e.PID)
	case messages.BoxExited:
		d := fmt.Sprintf("exit %s (%s)", exitText(&e.Exit), e.Exit.Reason)
		if e.Requested {
			d += ", requested"
		}
		return d
	case messages.BoxRestarting:
		return fmt.Sprintf("attempt %d in %v", e.Attempt, e.Delay.Round(time.Millisecond))
	case messages.BoxFailed:
		return e.Reason
	case messages.BoxHealthy:
		if e.First {
			return "first passing check"
		}
		return "passing again"
	case messages.BoxUnhealthy:
		d := fmt.Sprintf("%d failures in a row", e.FailingStreak)
		if e.Last.Reason != "" {
			d += ": " + e.Last.Reason
		}
		return d
	case messages.EventsLagged:
		return fmt.Sprintf("%d dropped", e.Dropped)
	}
	return "-"
}

// parseEventFilters turns --filter flags into a selection; a bad one is a
// usage error (exit 2).
func parseEventFilters(filters []string) (control.Selection, error) {
	var sel control.Selection
	var selectors []string
	for _, f := range filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok || value == "" {
			return sel, usageError(fmt.Errorf("--filter %q: want KEY=VALUE (box=, label= or kind=)", f))
		}
		switch key {
		case "box", "id":
			sel.Boxes = append(sel.Boxes, value)
		case "label":
			if _, err := labels.Parse(value); err != nil {
				return sel, usageError(fmt.Errorf("--filter %q: %v", f, err))
			}
			selectors = append(selectors, value)
		case "kind":
			if value == "EventsLagged" {
				return sel, usageError(fmt.Errorf("--filter %q: EventsLagged markers are always sent, whatever the filter", f))
			}
			if !slices.Contains(control.EventKinds(), value) {
				return sel, usageError(fmt.Errorf("--filter %q: unknown kind (one of %s)", f, strings.Join(control.EventKinds(), ", ")))
			}
			sel.Kinds = append(sel.Kinds, value)
		default:
			return sel, usageError(fmt.Errorf("--filter %q: unknown key %q (box, label or kind)", f, key))
		}
	}
	sel.Labels = strings.Join(selectors, ",")
	return sel, nil
}

// parseWhen reads an RFC 3339 time, or a duration before now; "" is the
// zero time.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError(messages.Errorf(messages.ErrBadSpec, "%s %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a duration before now (10m)", flag, s))
}
