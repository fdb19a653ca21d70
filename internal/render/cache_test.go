package render

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
)

func cacheTarget(ks string) *boot.Target {
	return &boot.Target{
		Record:  &inventory.HostRecord{Host: inventory.Host{Name: "h1.example.com", IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1"}, Token: "T"},
		Profile: &inventory.Profile{Name: "p", Kickstart: ks},
		Distro:  &inventory.Distro{Name: "d", Release: "rhel9"},
	}
}

// TestTemplatesCache: a cached template follows edits of the template and
// of its snippets, and concurrent renders share it safely (-race).
func TestTemplatesCache(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "snippets"), 0o755)
	write := func(name, s string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		// A later mtime even on coarse clocks.
		now := time.Now().Add(time.Duration(len(s)) * time.Second)
		os.Chtimes(p, now, now)
	}
	write("t.ks", "text\nnetwork --hostname={{ .host.name }}\n{{ snippet \"s\" }}\n")
	write("snippets/s", "# one {{ .host.name }}")
	var c Templates
	p := boot.Plan{BaseURL: "http://192.0.2.1:8080"}
	render := func() string {
		t.Helper()
		b, err := renderTemplate(&c, dir, cacheTarget("t.ks"), p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := render(); !strings.Contains(got, "--hostname=h1.example.com") || !strings.Contains(got, "# one h1.example.com") {
		t.Fatalf("first render:\n%s", got)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := renderTemplate(&c, dir, cacheTarget("t.ks"), p); err != nil || !strings.Contains(string(b), "# one") {
				t.Errorf("concurrent render: %v\n%s", err, b)
			}
		}()
	}
	wg.Wait()
	write("snippets/s", "# two, longer {{ .host.name }}")
	if got := render(); !strings.Contains(got, "# two, longer h1.example.com") {
		t.Errorf("snippet edit not seen:\n%s", got)
	}
	write("t.ks", "text\n# edited template, now longer\n")
	if got := render(); !strings.Contains(got, "# edited template") {
		t.Errorf("template edit not seen:\n%s", got)
	}
	write("t.ks", "{{ .nosuchkey }}\n# padding to change the size......\n")
	if _, err := renderTemplate(&c, dir, cacheTarget("t.ks"), p); err == nil {
		t.Error("missingkey=error lost in the cache")
	}
	// The built-in default, cached too.
	if b, err := renderTemplate(&c, dir, cacheTarget(""), p); err != nil || !strings.Contains(string(b), "h1.example.com") {
		t.Errorf("built-in default: %v\n%s", err, b)
	}
	if _, err := renderTemplate(&c, dir, cacheTarget("../etc/passwd"), p); err == nil {
		t.Error("a template outside the directory was read")
	}
}

func BenchmarkKickstartCached(b *testing.B) {
	var c Templates
	t := cacheTarget("")
	p := boot.Plan{BaseURL: "http://192.0.2.1:8080"}
	for b.Loop() {
		if _, _, err := c.Kickstart("", t, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKickstartUncached(b *testing.B) {
	t := cacheTarget("")
	p := boot.Plan{BaseURL: "http://192.0.2.1:8080"}
	for b.Loop() {
		if _, _, err := Kickstart("", t, p); err != nil {
			b.Fatal(err)
		}
	}
}
