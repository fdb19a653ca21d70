package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// image's output file is --out; -o is the format, as everywhere else (the
// issue: -o meant "output file" in image and "format" elsewhere), and
// `image ls -o json|yaml` prints the listing with every long-listing field.
func TestImageOutAndListingFormats(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "hello"), []byte("hello\n"), 0o640)
	os.Symlink("etc/hello", filepath.Join(src, "link"))
	img := filepath.Join(dir, "x.img")

	if out, errOut, code := runCLI(t, nil, "image", "pack", src, "-o", img); code != 2 || !strings.Contains(errOut, "--out") || out != "" {
		t.Errorf("image pack -o FILE: exit %d, %q; want exit 2 pointing at --out", code, errOut)
	}
	if _, err := os.Stat(img); err == nil {
		t.Fatal("image pack -o FILE wrote the file")
	}
	if _, errOut, code := runCLI(t, nil, "image", "pack", src, "--out", img, "--compress", "none"); code != 0 {
		t.Fatalf("image pack --out: exit %d: %s", code, errOut)
	}

	table, _, code := runCLI(t, nil, "image", "ls", "-l", img)
	if code != 0 || !strings.Contains(table, "etc/hello") || !strings.Contains(table, "-rw-r-----") {
		t.Fatalf("image ls -l: exit %d:\n%s", code, table)
	}
	for _, f := range []string{"json", "yaml"} {
		out, errOut, code := runCLI(t, nil, "image", "ls", "-o", f, img)
		if code != 0 {
			t.Fatalf("image ls -o %s: exit %d: %s", f, code, errOut)
		}
		var l imageListing
		var err error
		if f == "json" {
			err = json.Unmarshal([]byte(out), &l)
		} else {
			// Through a map: yaml.v3 reads the yaml, json tags name the fields.
			var m any
			if err = yaml.Unmarshal([]byte(out), &m); err == nil {
				b, _ := json.Marshal(m)
				err = json.Unmarshal(b, &l)
			}
		}
		if err != nil {
			t.Fatalf("image ls -o %s: %v\n%s", f, err, out)
		}
		if l.Format != "initrd" || len(l.Segments) != 1 || l.Segments[0].Compression != "none" {
			t.Fatalf("image ls -o %s: %+v", f, l)
		}
		found := map[string]imageEntry{}
		for _, e := range l.Segments[0].Entries {
			found[e.Path] = e
		}
		if e := found["etc/hello"]; e.Mode != "-rw-r-----" || e.Size != 6 || e.Nlink == 0 {
			t.Errorf("image ls -o %s: etc/hello is %+v", f, e)
		}
		if e := found["link"]; e.Link != "etc/hello" || !strings.HasPrefix(e.Mode, "l") {
			t.Errorf("image ls -o %s: link is %+v", f, e)
		}
	}
}
