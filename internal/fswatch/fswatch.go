// Package fswatch tells when files change. It exists so that the server
// sees an edit of its inventory at once, without reading anything until
// something changed.
//
// Events are only a trigger: after each burst the watched paths are stat'ed
// and compared with what they were, and only real differences are
// reported. That keeps the answer right whatever the editor does (write in
// place, write a temporary file and rename it over, swap a symlink as
// configuration tools and Kubernetes do) and ignores editors' swap files.
// Where inotify is unavailable, the same comparison runs every poll period.
package fswatch

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Options tune Watch. Zero values take the defaults.
type Options struct {
	// Entry says which names in a watched directory count (default: all).
	Entry func(name string) bool
	// Poll is the period of the comparison when inotify is unavailable
	// (default 2 s).
	Poll time.Duration
	// Quiet is how long a burst of events must pause before the paths
	// are compared (default 50 ms): an editor's save is several events.
	Quiet time.Duration
	// ForcePoll skips inotify (tests, and file systems where it sees
	// nothing, such as NFS).
	ForcePoll bool
	Log       *slog.Logger
}

// Watch reports on the returned channel, after each change, which of the
// paths changed: a file's size, modification time or inode, its coming or
// going, or the same for an entry of a directory. Paths need not exist
// yet. When the receiver is slow, changes are merged into the next send.
// The channel is closed when ctx ends.
func Watch(ctx context.Context, paths []string, o Options) <-chan []string {
	if o.Entry == nil {
		o.Entry = func(string) bool { return true }
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Quiet <= 0 {
		o.Quiet = 50 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	out := make(chan []string, 1)
	go (&watcher{paths: paths, o: o}).run(ctx, out)
	return out
}

type watcher struct {
	paths []string
	o     Options
	last  map[string]stamp
}

type stamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	mode  fs.FileMode
}

// dirs are the directories whose events matter: each path's own
// directory, the path itself if it is one, and the same for where a
// symlinked path leads.
func (w *watcher) dirs() []string {
	var out []string
	for _, p := range w.paths {
		for _, q := range []string{p, resolved(p)} {
			if q == "" {
				continue
			}
			out = append(out, filepath.Dir(q))
			if st, err := os.Stat(q); err == nil && st.IsDir() {
				out = append(out, q)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func resolved(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil || r == p {
		return ""
	}
	return r
}

// snapshot stats every path and every counted entry of those that are
// directories.
func (w *watcher) snapshot() map[string]stamp {
	m := map[string]stamp{}
	for _, p := range w.paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		m[p] = stampOf(st)
		if !st.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if !w.o.Entry(e.Name()) {
				continue
			}
			q := filepath.Join(p, e.Name())
			if st, err := os.Stat(q); err == nil {
				m[q] = stampOf(st)
			}
		}
	}
	return m
}

func stampOf(st fs.FileInfo) stamp {
	s := stamp{size: st.Size(), mtime: st.ModTime(), ino: inode(st), mode: st.Mode().Type()}
	if st.IsDir() {
		s.size, s.mtime = 0, time.Time{} // entries are compared instead
	}
	return s
}

// changes compares the paths with the last snapshot.
func (w *watcher) changes() []string {
	now := w.snapshot()
	var out []string
	for p, s := range now {
		if old, ok := w.last[p]; !ok || old != s {
			out = append(out, p)
		}
	}
	for p := range w.last {
		if _, ok := now[p]; !ok {
			out = append(out, p)
		}
	}
	w.last = now
	slices.Sort(out)
	return out
}

func (w *watcher) run(ctx context.Context, out chan<- []string) {
	defer close(out)
	var events <-chan struct{}
	var rewatch func()
	if !w.o.ForcePoll {
		ev, re, err := notify(ctx, w.dirs)
		if err != nil {
			w.o.Log.Warn("file watch: inotify unavailable, polling", "every", w.o.Poll, "err", err)
		} else {
			events, rewatch = ev, re
		}
	}
	// The first snapshot follows the watches, so that no change falls
	// between the two.
	w.last = w.snapshot()
	poll := time.NewTicker(w.o.Poll)
	defer poll.Stop()
	tick := poll.C
	if events != nil {
		poll.Stop()
		tick = nil
	}
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var pending []string
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				w.o.Log.Warn("file watch: inotify failed, polling", "every", w.o.Poll)
				events, rewatch = nil, nil
				poll.Reset(w.o.Poll)
				tick = poll.C
			}
			quiet.Reset(w.o.Quiet)
			continue
		case <-tick:
		case <-quiet.C:
			if rewatch != nil {
				rewatch() // a directory may have come or gone
			}
		}
		pending = append(pending, w.changes()...)
		if len(pending) == 0 {
			continue
		}
		slices.Sort(pending)
		select {
		case out <- slices.Compact(pending):
			pending = nil
		default:
			// The receiver is busy: try again shortly.
			quiet.Reset(w.o.Quiet)
		}
	}
}
