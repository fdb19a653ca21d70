package fswatch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// notify watches the directories dirs returns with inotify and signals on
// the returned channel whenever anything happens in them (the caller
// compares stat results to learn what); it is closed if reading fails.
// rewatch adds watches for
// directories that have appeared since; the kernel drops those of
// directories that went.
func notify(ctx context.Context, dirs func() []string) (<-chan struct{}, func(), error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, err
	}
	// A non-blocking descriptor goes to Go's poller, so Close ends a
	// pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	rewatch := func() {
		for _, d := range dirs() {
			unix.InotifyAddWatch(fd, d, watchMask) // a directory may vanish meanwhile
		}
	}
	added := 0
	for _, d := range dirs() {
		if _, err := unix.InotifyAddWatch(fd, d, watchMask); err == nil {
			added++
		} else if !errors.Is(err, unix.ENOENT) {
			f.Close()
			return nil, nil, err
		}
	}
	if added == 0 {
		f.Close()
		return nil, nil, errors.New("no directory to watch")
	}
	ev := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		defer close(ev)
		buf := make([]byte, 64<<10)
		for {
			// The events themselves are not parsed: any of them, an
			// overflow included, means "compare again".
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case ev <- struct{}{}:
			default:
			}
		}
	}()
	return ev, rewatch, nil
}
