package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// mainFile has one host; hosts.d files add more.
const mainFile = `server:
  address_v4: 192.0.2.1
distros:
  - name: el9
    release: rhel9
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
hosts:
  - name: main.example.com
    macs: ["52:54:00:00:00:01"]
    profile: p
`

func hostYAML(name, mac string) string {
	return "  - name: " + name + "\n    macs: [\"" + mac + "\"]\n    profile: p\n"
}

// inventoryDir writes kickstand.yaml and hosts.d/<name> for each file.
func inventoryDir(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "kickstand.yaml")
	write(t, path, mainFile)
	os.Mkdir(filepath.Join(dir, "hosts.d"), 0o755)
	for n, body := range files {
		write(t, filepath.Join(dir, "hosts.d", n), body)
	}
	return dir, path
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(c *Config) []string {
	var out []string
	for _, h := range c.Hosts {
		out = append(out, h.Name)
	}
	return out
}

func TestHostsDirLoadsInNameOrder(t *testing.T) {
	_, path := inventoryDir(t, map[string]string{
		"20-b.yaml":     "hosts:\n" + hostYAML("b", "52:54:00:00:00:0b"),
		"10-a.yml":      "# rack a\nhosts:\n" + hostYAML("a", "52:54:00:00:00:0a") + hostYAML("a2", "52-54-00-00-00-AA"),
		".20-b.yaml.sw": "not yaml: [",
		".hidden.yaml":  "hosts: [{name: hidden, profile: nope}]",
		"notes.txt":     "hosts: nope",
		"30-empty.yaml": "",
	})
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(c), []string{"main.example.com", "a", "a2", "b"}; !slices.Equal(got, want) {
		t.Fatalf("hosts = %v, want %v", got, want)
	}
	if c.Hosts[2].MACs[0] != "52:54:00:00:00:aa" || c.Hosts[3].Netboot != StateLocal {
		t.Errorf("defaults not applied to hosts.d hosts: %+v", c.Hosts[2:])
	}
	if f, line := c.HostFile("a2"); !strings.HasSuffix(f, "hosts.d/10-a.yml") || line != 6 {
		t.Errorf("HostFile(a2) = %s:%d", f, line)
	}
}

// Every problem in a hosts.d file is reported at its own file and line,
// with the host's index in that file.
func TestHostsDirErrorLocations(t *testing.T) {
	dir, path := inventoryDir(t, map[string]string{
		"a.yaml": "hosts:\n" + hostYAML("a", "52:54:00:00:00:0a"),
		"b.yaml": "hosts:\n" + hostYAML("b", "52:54:00:00:00:0b") +
			"  - name: c\n    macs: [\"52:54:00:00:00:0c\"]\n    profile: nope\n    colour: red\n",
		"c.yaml": "server:\n  http: \":1\"\nhosts: []\n",
	})
	_, err := Load(path)
	if err == nil {
		t.Fatal("loaded")
	}
	b, c := filepath.Join(dir, "hosts.d", "b.yaml"), filepath.Join(dir, "hosts.d", "c.yaml")
	for _, want := range []string{
		b + ":7: hosts[1].profile: unknown profile \"nope\"",
		b + ":8: hosts[1].colour: unknown key \"colour\"",
		c + ":1: server: only hosts belong in a hosts.d file",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// A syntax error names its file too.
	write(t, b, "hosts:\n  - name: [\n")
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), b+":") {
		t.Errorf("syntax error = %v", err)
	}
}

// A MAC declared in two files is refused, naming both places.
func TestHostsDirDuplicateMACAcrossFiles(t *testing.T) {
	dir, path := inventoryDir(t, map[string]string{
		"a.yaml": "hosts:\n" + hostYAML("a", "52:54:00:00:00:0a"),
		"b.yaml": "# later\nhosts:\n" + hostYAML("b", "52:54:00:00:00:0b") + hostYAML("dup", "52:54:00:00:00:0A"),
	})
	_, err := Load(path)
	a, b := filepath.Join(dir, "hosts.d", "a.yaml"), filepath.Join(dir, "hosts.d", "b.yaml")
	want := b + ":7: hosts[1].macs[0]: MAC 52:54:00:00:00:0a is also used by host a (" + a + ":2)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// The same against the main file's host.
	write(t, b, "hosts:\n"+hostYAML("main.example.com", "52:54:00:00:00:0e"))
	_, err = Load(path)
	want = b + ":2: hosts[0].name: duplicate host \"main.example.com\" (also at " + path + ":13)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// A reload re-reads only the files that changed; the rest come from the
// previous load as they were.
func TestHostsDirRereadsOnlyChangedFiles(t *testing.T) {
	dir, path := inventoryDir(t, map[string]string{
		"a.yaml": "hosts:\n" + hostYAML("a", "52:54:00:00:00:0a"),
		"b.yaml": "hosts:\n" + hostYAML("b", "52:54:00:00:00:0b"),
	})
	l := &Loader{Path: path}
	c1, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "hosts.d", "a.yaml"), filepath.Join(dir, "hosts.d", "b.yaml")
	before := l.cache[a].pf
	write(t, b, "hosts:\n"+hostYAML("b", "52:54:00:00:00:0b")+hostYAML("b2", "52:54:00:00:00:b2"))
	c2, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	if l.cache[a].pf != before {
		t.Error("unchanged a.yaml was parsed again")
	}
	if again, err := l.Load(false); err != nil || again != c2 {
		t.Errorf("a load of unchanged files made a new config (%v)", err)
	}
	if got := ChangedHosts(c1, c2); !slices.Equal(got, []string{"b2"}) {
		t.Errorf("changed = %v, want [b2]", got)
	}
	if _, err := l.Load(true); err != nil || l.cache[a].pf == before {
		t.Errorf("Load(reread) kept the parsed a.yaml (err %v)", err)
	}
	// A failed load leaves the next one starting from the last good files.
	write(t, b, "hosts: [")
	if _, err := l.Load(false); err == nil {
		t.Fatal("bad file loaded")
	}
	write(t, b, "hosts:\n"+hostYAML("b", "52:54:00:00:00:0b"))
	c3, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	if got := ChangedHosts(c2, c3); !slices.Equal(got, []string{"b2"}) {
		t.Errorf("changed = %v, want [b2]", got)
	}
}

func TestHostsDirFileRemoved(t *testing.T) {
	dir, path := inventoryDir(t, map[string]string{
		"a.yaml": "hosts:\n" + hostYAML("a", "52:54:00:00:00:0a"),
		"b.yaml": "hosts:\n" + hostYAML("b", "52:54:00:00:00:0b") + hostYAML("b2", "52:54:00:00:00:b2"),
	})
	l := &Loader{Path: path}
	c1, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "hosts.d", "b.yaml"))
	c2, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(c2); !slices.Equal(got, []string{"main.example.com", "a"}) {
		t.Errorf("hosts = %v", got)
	}
	if got := ChangedHosts(c1, c2); !slices.Equal(got, []string{"b", "b2"}) {
		t.Errorf("changed = %v, want [b b2]", got)
	}
	// The whole directory gone: the main file's hosts remain.
	os.RemoveAll(filepath.Join(dir, "hosts.d"))
	c3, err := l.Load(false)
	if err != nil || !slices.Equal(names(c3), []string{"main.example.com"}) {
		t.Errorf("without hosts.d: %v, %v", err, c3)
	}
}

// Moving a host from one file to another, unchanged, is no change.
func TestHostsDirHostMovedIsUnchanged(t *testing.T) {
	dir, path := inventoryDir(t, map[string]string{
		"a.yaml": "hosts:\n" + hostYAML("a", "52:54:00:00:00:0a") + hostYAML("mover", "52:54:00:00:00:99"),
		"b.yaml": "hosts:\n" + hostYAML("b", "52:54:00:00:00:0b"),
	})
	l := &Loader{Path: path}
	c1, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "hosts.d", "a.yaml"), "hosts:\n"+hostYAML("a", "52:54:00:00:00:0a"))
	write(t, filepath.Join(dir, "hosts.d", "b.yaml"), "hosts:\n"+hostYAML("mover", "52:54:00:00:00:99")+hostYAML("b", "52:54:00:00:00:0b"))
	c2, err := l.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	if got := ChangedHosts(c1, c2); len(got) != 0 {
		t.Errorf("changed = %v, want none", got)
	}
	if f, _ := c2.HostFile("mover"); !strings.HasSuffix(f, "b.yaml") {
		t.Errorf("mover declared in %s", f)
	}
}

func TestHostsDirSetting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kickstand.yaml")
	write(t, path, mainFile+"  # fleet elsewhere\n")
	if _, err := Load(path); err != nil {
		t.Fatalf("no hosts.d at all: %v", err)
	}
	write(t, path, strings.Replace(mainFile, "server:\n", "server:\n  hosts_dir: fleet\n", 1))
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path+":2: server.hosts_dir: open ") {
		t.Fatalf("missing hosts_dir: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "fleet"), 0o755)
	write(t, filepath.Join(dir, "fleet", "x.yaml"), "hosts:\n"+hostYAML("x", "52:54:00:00:00:0f"))
	c, err := Load(path)
	if err != nil || !slices.Equal(names(c), []string{"main.example.com", "x"}) {
		t.Fatalf("hosts_dir fleet: %v %v", err, c)
	}
	if w := c.WatchPaths(); w[0] != path || w[1] != filepath.Join(dir, "fleet") {
		t.Errorf("WatchPaths = %v", w)
	}
}

// A reload of a large file parses again only the chunks whose text
// changed, and gives exactly what a fresh load gives, lines included.
func TestReloadParsesOnlyChangedChunks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kickstand.yaml")
	src := manyHosts(30000, func(i int) string { // about 3.5 MB: several chunks
		return fmt.Sprintf("  - name: h%d.example.com\n    macs: [\"52:54:00:%02x:%02x:%02x\"]\n    ipv6: 2001:db8::%x/64\n    profile: p\n", i, i>>16, i>>8&255, i&255, i+1)
	})
	write(t, path, src)
	l := &Loader{Path: path}
	if _, err := l.Load(false); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []struct{ name, old, new string }{
		{"one host edited", "name: h20000.example.com\n", "name: h20000.example.com\n    netboot: install\n"},
		{"one host added", "  - name: h100.example.com\n", "  - name: new.example.com\n    macs: [\"52:54:00:ff:ff:ff\"]\n    profile: p\n  - name: h100.example.com\n"},
	} {
		t.Run(edit.name, func(t *testing.T) {
			src = strings.Replace(src, edit.old, edit.new, 1)
			write(t, path, src)
			got, err := l.Load(true)
			if err != nil {
				t.Fatal(err)
			}
			if l.chunks.misses > 2 || l.chunks.hits < 2 {
				t.Errorf("chunks parsed again: %d, reused: %d", l.chunks.misses, l.chunks.hits)
			}
			want, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Hosts, want.Hosts) || !slices.Equal(got.hostFiles[0].lines, want.hostFiles[0].lines) {
				t.Error("reload with cached chunks differs from a fresh load")
			}
		})
	}
}
