package initrd

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestListSquashfs builds a stage2-shaped squashfs (LiveOS/rootfs.img inside, as seed 000's
// addendum describes) with mksquashfs and compares ListSquashfs with unsquashfs's listing.
func TestListSquashfs(t *testing.T) {
	need(t, "mksquashfs", "unsquashfs")
	src := t.TempDir()
	live := filepath.Join(src, "LiveOS")
	os.MkdirAll(live, 0o755)
	rootfs := bytes.Repeat([]byte("ext4-image-stand-in\n"), 20000)
	os.WriteFile(filepath.Join(live, "rootfs.img"), rootfs, 0o644)
	os.WriteFile(filepath.Join(src, "LiveOS", "README"), []byte("stage2\n"), 0o644)
	os.Symlink("rootfs.img", filepath.Join(live, "current"))
	// Not lz4: go-diskfs v1.7.0 reads raw lz4 blocks as lz4 frames and fails ("bad magic number").
	for _, comp := range []string{"xz", "gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "squashfs.img")
			// -keep-as-directory puts LiveOS/ at the top, as in seed 000.
			run(t, "", nil, "mksquashfs "+live+" "+img+" -comp "+comp+" -keep-as-directory -no-progress -quiet")
			entries, err := ListSquashfs(img)
			if err != nil {
				t.Fatal(err)
			}
			var ours []string
			byPath := map[string]SquashEntry{}
			for _, e := range entries {
				ours = append(ours, e.Path)
				byPath[e.Path] = e
			}
			var theirs []string
			for _, line := range strings.Split(strings.TrimSpace(string(run(t, "", nil, "unsquashfs -l -d '' "+img))), "\n") {
				if strings.HasPrefix(line, "/") {
					theirs = append(theirs, line)
				}
			}
			sort.Strings(ours)
			sort.Strings(theirs)
			if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
				t.Errorf("paths differ:\nours:\n%s\nunsquashfs:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
			}
			if e := byPath["/LiveOS/rootfs.img"]; e.Size != int64(len(rootfs)) || !e.Mode.IsRegular() {
				t.Errorf("rootfs.img: %+v", e)
			}
			if e := byPath["/LiveOS/current"]; e.Link != "rootfs.img" {
				t.Errorf("symlink: %+v", e)
			}
		})
	}
	if _, err := ListSquashfs(filepath.Join(src, "LiveOS", "README")); err == nil || !strings.Contains(err.Error(), "no squashfs superblock") {
		t.Errorf("non-squashfs input: %v", err)
	}
}
