package fswatch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expect waits (bounded) for a report naming want.
func expect(t *testing.T, ch <-chan []string, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-ch:
			if slices.Contains(got, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no report of %s", want)
		}
	}
}

// quiet checks that nothing is reported for a while.
func quiet(t *testing.T, ch <-chan []string, what string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("%s reported %v", what, got)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	for _, mode := range []string{"inotify", "poll"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			main, hostsDir := filepath.Join(dir, "kickstand.yaml"), filepath.Join(dir, "hosts.d")
			write(t, main, "a")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := Watch(ctx, []string{main, hostsDir}, Options{
				ForcePoll: mode == "poll", Poll: 20 * time.Millisecond,
				Entry: func(n string) bool { return strings.HasSuffix(n, ".yaml") && !strings.HasPrefix(n, ".") },
			})
			time.Sleep(100 * time.Millisecond) // the watch is set up

			write(t, main, "ab")
			expect(t, ch, main)

			// An editor's save: a new file renamed over the old one.
			write(t, main+".tmp", "xy")
			os.Rename(main+".tmp", main)
			expect(t, ch, main)

			// The hosts directory appears after the watch began.
			os.Mkdir(hostsDir, 0o755)
			write(t, filepath.Join(hostsDir, "a.yaml"), "hosts: []")
			expect(t, ch, filepath.Join(hostsDir, "a.yaml"))

			write(t, filepath.Join(hostsDir, "a.yaml"), "hosts: [ ]")
			expect(t, ch, filepath.Join(hostsDir, "a.yaml"))

			// Swap files and other names do not count.
			write(t, filepath.Join(hostsDir, ".a.yaml.swp"), "x")
			write(t, filepath.Join(hostsDir, "notes.txt"), "x")
			quiet(t, ch, "a swap file")

			os.Remove(filepath.Join(hostsDir, "a.yaml"))
			expect(t, ch, filepath.Join(hostsDir, "a.yaml"))

			cancel()
			for range ch {
			}
		})
	}
}

// Configuration tools publish by swapping a symlink; the watch follows it.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "v1"), 0o755)
	os.Mkdir(filepath.Join(dir, "v2"), 0o755)
	write(t, filepath.Join(dir, "v1", "kickstand.yaml"), "one")
	write(t, filepath.Join(dir, "v2", "kickstand.yaml"), "two, longer")
	os.Symlink("v1", filepath.Join(dir, "data"))
	main := filepath.Join(dir, "kickstand.yaml")
	os.Symlink(filepath.Join("data", "kickstand.yaml"), main)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := Watch(ctx, []string{main}, Options{})
	time.Sleep(100 * time.Millisecond)
	os.Symlink("v2", filepath.Join(dir, "data.new"))
	os.Rename(filepath.Join(dir, "data.new"), filepath.Join(dir, "data"))
	expect(t, ch, main)
}
