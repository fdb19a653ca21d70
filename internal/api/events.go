package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

const (
	defaultEventLimit = 1000
	maxEventLimit     = 10000
	// streamPage bounds one store read of the live stream; a client that
	// is far behind catches up in several.
	streamPage = 500
)

// Secrets that can reach the timeline through text kickstand does not
// write itself: installer syslog lines and uploaded logs quote kickstart
// and callback URLs (build tokens), mirror URLs with passwords, boot
// options such as inst.vncpassword=, and crypt hashes from the kickstart.
// The store keeps what was received; the API never shows these.
var secretPatterns = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(/(?:ks|cb)/)[^/\s"'?&#<>]+`), "${1}<token>"},
	{regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@`), "${1}<redacted>@"},
	{regexp.MustCompile(`(?i)(\b[\w.-]*pass(?:word|wd|phrase)?[\w.-]*=)("[^"]*"\S*|'[^']*'\S*|\S+)`), "${1}<redacted>"},
	{regexp.MustCompile(`\$(?:1|2[aby]?|5|6|y|gy|7)\$[./A-Za-z0-9$]{8,}`), "<redacted-hash>"},
}

func redact(s string) string {
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}

// redactValue copies v with every string in it redacted. It copies rather
// than edits: an event's Data may be shared with a store's own copy.
func redactValue(v any) any {
	switch x := v.(type) {
	case string:
		return redact(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = redactValue(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = redactValue(e)
		}
		return l
	}
	return v
}

func redactEvent(e store.Event) store.Event {
	e.Detail = redact(e.Detail)
	if e.Data != nil {
		e.Data = redactValue(e.Data).(map[string]any)
	}
	return e
}

func redactEvents(evs []store.Event) []store.Event {
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		out[i] = redactEvent(e)
	}
	return out
}

// page reads the after and limit query parameters.
func page(r *http.Request) (after int64, limit int, err error) {
	q := r.URL.Query()
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return 0, 0, fmt.Errorf("after: want an event id, not %q", s)
		}
	}
	limit = defaultEventLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxEventLimit {
			return 0, 0, fmt.Errorf("limit: want 1 to %d, not %q", maxEventLimit, s)
		}
	}
	return after, limit, nil
}

func (a *api) timeline(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("name")
	after, limit, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := a.d.Store.Host(r.Context(), name); err != nil {
		a.fail(w, r, "host "+name, err)
		return
	}
	evs, err := a.d.Store.Events(r.Context(), name, after, limit)
	if err != nil {
		a.fail(w, r, "timeline of "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, redactEvents(evs))
}

func (a *api) events(w http.ResponseWriter, r *http.Request, _ string) {
	after, limit, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	evs, err := a.d.Store.Events(r.Context(), "", after, limit)
	if err != nil {
		a.fail(w, r, "events", err)
		return
	}
	writeJSON(w, http.StatusOK, redactEvents(evs))
}

// stream sends stored events as server-sent events, starting after the
// id in the Last-Event-ID header (an EventSource reconnecting) or ?after=,
// or with what happens from now on. ?host= narrows it to one host.
//
// The recorder's notifications only wake the stream; what is sent is read
// from the store, so every event carries its id, none is sent twice, and
// one a slow client missed in the notification channel is still sent at
// the next wake-up or heartbeat.
func (a *api) stream(w http.ResponseWriter, r *http.Request, _ string) {
	ctx := r.Context()
	host := r.URL.Query().Get("host")
	if host != "" {
		if _, err := a.d.Store.Host(ctx, host); err != nil {
			a.fail(w, r, "host "+host, err)
			return
		}
	}
	var wake <-chan store.Event
	if a.d.Events != nil {
		c, cancel := a.d.Events.Subscribe()
		defer cancel()
		wake = c
	}
	changed, stop := a.changed.listen()
	defer stop()
	// Subscribed before the cursor is read: nothing falls in between.
	cursor, err := a.cursor(r)
	if err != nil {
		if _, bad := err.(badCursor); bad {
			writeError(w, http.StatusBadRequest, err.Error())
		} else {
			a.fail(w, r, "event stream", err)
		}
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // a reverse proxy must not hold events back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n: kickstand events\n\n"); err != nil {
		return
	}
	send := func() error {
		for {
			evs, err := a.d.Store.Events(ctx, host, cursor, streamPage)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				a.d.Log.WarnContext(ctx, "api: event stream: reading the store", "err", err)
				_, err = fmt.Fprint(w, ": store unavailable, retrying\n\n")
				return err
			}
			for _, e := range evs {
				b, err := json.Marshal(redactEvent(e))
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.ID, b); err != nil {
					return err
				}
				cursor = e.ID
			}
			if len(evs) < streamPage {
				return nil
			}
		}
	}
	tick := time.NewTicker(a.d.Heartbeat)
	defer tick.Stop()
	for {
		err := send()
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went away
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
			// One store read covers every notification queued so far.
			for drained := false; !drained; {
				select {
				case <-wake:
				default:
					drained = true
				}
			}
		case <-changed:
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		}
	}
}

type badCursor struct{ error }

// cursor is the id the stream starts after.
func (a *api) cursor(r *http.Request) (int64, error) {
	// The header wins: it is where a reconnecting EventSource got to,
	// while its URL still says where it first started.
	for _, s := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if s == "" {
			continue
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 0 {
			return 0, badCursor{fmt.Errorf("event stream: want an event id to start after, not %q", s)}
		}
		return id, nil
	}
	return a.d.Store.LastEventID(r.Context())
}

// Unknown is GET /unknown: the latest requests, syslog lines and DHCP
// messages that matched no host (never stored), and how many there have
// been by kind.
type Unknown struct {
	Events []store.Event     `json:"events"`
	Counts map[string]uint64 `json:"counts"`
}

func (a *api) unknown(w http.ResponseWriter, r *http.Request, _ string) {
	u := Unknown{Events: []store.Event{}, Counts: map[string]uint64{}}
	if a.d.Events != nil {
		u.Events, u.Counts = a.d.Events.Unknown()
		u.Events = redactEvents(u.Events)
	}
	writeJSON(w, http.StatusOK, u)
}

// Redact hides the secrets of secretPatterns in s, for other operator
// outputs (the CLI's timeline) that show installer text.
func Redact(s string) string { return redact(s) }

// RedactEvents returns copies of evs with their text redacted.
func RedactEvents(evs []store.Event) []store.Event { return redactEvents(evs) }
