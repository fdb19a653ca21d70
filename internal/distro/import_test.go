package distro_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/distro"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

// needTool skips (or, under make test, fails) when a real tool is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (scripts/deps.sh installs it)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

const testConfig = `
server:
  data_dir: data
distros:
  - name: owned
    release: rhel9
    tree: /nonexistent
    kernel: images/pxeboot/vmlinuz
    initrd: [images/pxeboot/initrd.img]
profiles:
  - name: ownedprofile
    distro: owned
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
`

type env struct {
	dir  string
	data string
	in   *server.Instance
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	in, err := server.Open(context.Background(), cfg, server.Options{DataDir: data, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return &env{dir: dir, data: data, in: in}
}

func (e *env) importer() *distro.Importer {
	return &distro.Importer{DataDir: e.data, Store: e.in.Store, Config: e.in.Config()}
}

// tree is a small install tree: random kernel, initrd and stage2, a repo
// stub and a few packages, so an interrupted import has files to resume.
type tree struct {
	dir   string
	files map[string][]byte
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// makeTree writes a tree. With treeinfo, it gets a productmd-style
// .treeinfo with sha256 checksums of the boot images and stage2; a
// non-empty badSum names a file whose checksum is made wrong.
func makeTree(t *testing.T, treeinfo bool, badSum string) *tree {
	t.Helper()
	tr := &tree{dir: filepath.Join(t.TempDir(), "tree"), files: map[string][]byte{
		"images/pxeboot/vmlinuz":    randBytes(t, 300_000),
		"images/pxeboot/initrd.img": randBytes(t, 200_000),
		"LiveOS/squashfs.img":       randBytes(t, 150_000),
		"repodata/repomd.xml":       []byte("<?xml version=\"1.0\"?>\n<repomd/>\n"),
		"EFI/BOOT/BOOTX64.EFI":      []byte("MZ stub\n"),
		"EFI/BOOT/grubx64.efi":      []byte("MZ grub\n"),
	}}
	for i := range 12 {
		tr.files[fmt.Sprintf("Packages/pkg%02d-1.0-1.el7.x86_64.rpm", i)] = randBytes(t, 10_000+i)
	}
	if treeinfo {
		var sums strings.Builder
		for _, p := range []string{"images/pxeboot/vmlinuz", "images/pxeboot/initrd.img", "LiveOS/squashfs.img"} {
			s := sha256.Sum256(tr.files[p])
			if p == badSum {
				s[0] ^= 0xff
			}
			fmt.Fprintf(&sums, "%s = sha256:%x\n", p, s)
		}
		tr.files[".treeinfo"] = []byte(`[header]
type = productmd.treeinfo
version = 1.2

[release]
name = CentOS
short = CentOS
version = 7.2

[tree]
arch = x86_64
platforms = x86_64,xen
variants = Server

[images-x86_64]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img

[images-xen]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img

[stage2]
mainimage = LiveOS/squashfs.img

[variant-Server]
id = Server
repository = .
packages = Packages

[checksums]
` + sums.String())
	}
	for p, b := range tr.files {
		full := filepath.Join(tr.dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// makeISO builds an ISO of the tree with xorriso, Rock Ridge and Joliet.
func makeISO(t *testing.T, dir string) string {
	t.Helper()
	needTool(t, "xorriso")
	iso := filepath.Join(t.TempDir(), "x.iso")
	out, err := exec.Command("xorriso", "-as", "mkisofs", "-R", "-J", "-V", "KSTEST", "-o", iso, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return iso
}

// checkServed fetches every file of the tree over kickstand's HTTP handler
// and compares the bytes.
func (e *env) checkServed(t *testing.T, name string, tr *tree) {
	t.Helper()
	h := e.in.HTTPServer(nil)
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	for p, want := range tr.files {
		resp, err := http.Get(srv.URL + "/distros/" + name + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Errorf("GET /distros/%s/%s: status %d, %d bytes (want %d, equal %v)", name, p, resp.StatusCode, len(got), len(want), bytes.Equal(got, want))
		}
	}
}

func (e *env) notRegistered(t *testing.T, name string) {
	t.Helper()
	if d, err := e.in.Store.Distro(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("distro %s: %+v, %v; want not found", name, d, err)
	}
	if p, err := e.in.Store.Profile(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("profile %s: %+v, %v; want not found", name, p, err)
	}
	if _, err := os.Stat(filepath.Join(e.data, "distros", name)); err == nil {
		t.Errorf("distros/%s exists after a failed import", name)
	}
}

func TestImportISOServed(t *testing.T) {
	tr := makeTree(t, true, "")
	iso := makeISO(t, tr.dir)
	e := newEnv(t)
	var progress bytes.Buffer
	im := e.importer()
	im.Progress = &distro.Progress{W: &progress, Label: "import centos7.2", Every: 1}
	res, err := im.Import(context.Background(), distro.Request{Name: "centos7.2", Source: iso})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != len(tr.files) || res.Files != len(tr.files) {
		t.Errorf("copied %d of %d files, want %d", res.Copied, res.Files, len(tr.files))
	}
	slices.Sort(res.Verified)
	if want := []string{"LiveOS/squashfs.img", "images/pxeboot/initrd.img", "images/pxeboot/vmlinuz"}; !slices.Equal(res.Verified, want) {
		t.Errorf("verified %v, want %v", res.Verified, want)
	}
	d, err := e.in.Store.Distro(context.Background(), "centos7.2")
	if err != nil {
		t.Fatal(err)
	}
	if d.Release != "centos7.2" || d.Arch != "x86_64" || d.Kernel != "images/pxeboot/vmlinuz" ||
		!slices.Equal(d.Initrds, []string{"images/pxeboot/initrd.img"}) || d.Tree != filepath.Join(e.data, "distros", "centos7.2") || d.Stage2 != "" {
		t.Errorf("registered %+v", d)
	}
	if d.Shim != "EFI/BOOT/BOOTX64.EFI" || d.GRUB != "EFI/BOOT/grubx64.efi" {
		t.Errorf("Secure Boot pair from the ISO: shim %q grub %q", d.Shim, d.GRUB)
	}
	if p, err := e.in.Store.Profile(context.Background(), "centos7.2"); err != nil || p.Distro != "centos7.2" {
		t.Errorf("default profile %+v, %v", p, err)
	}
	e.checkServed(t, "centos7.2", tr)
	if !strings.Contains(progress.String(), "import centos7.2: ") || strings.Contains(progress.String(), "\r") {
		t.Errorf("plain progress output:\n%s", progress.String())
	}
	entries, _ := os.ReadDir(filepath.Join(e.data, "distros"))
	if len(entries) != 1 {
		t.Errorf("distros/ holds %v; want only the tree (no staging, no journal)", entries)
	}
}

func TestImportCorruptISO(t *testing.T) {
	tr := makeTree(t, true, "")
	iso := makeISO(t, tr.dir)
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"truncated":         {good[:len(good)/2], "truncated"},
		"no descriptor":     {good[:20000], "not an ISO9660 image"},
		"flipped signature": {flip(good, 16*2048+1), "no primary volume descriptor"},
		"not an iso":        {bytes.Repeat([]byte("junk"), 20000), "not an ISO9660 image"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			bad := filepath.Join(t.TempDir(), "bad.iso")
			if err := os.WriteFile(bad, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: bad})
			var ie *distro.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), bad) {
				t.Fatalf("err %v; want an InputError naming %s and saying %q", err, bad, c.want)
			}
			t.Log(err)
			e.notRegistered(t, "centos7.2")
			if entries, _ := os.ReadDir(filepath.Join(e.data, "distros")); len(entries) != 0 {
				t.Errorf("distros/ holds %v after a refused import", entries)
			}
		})
	}
}

func flip(b []byte, at int) []byte {
	c := slices.Clone(b)
	c[at] ^= 0xff
	return c
}

// A file whose extent lies past the end of the image, with a volume
// descriptor that does not say so, is caught while copying.
func TestImportISOFileBeyondEnd(t *testing.T) {
	tr := makeTree(t, false, "")
	iso := makeISO(t, tr.dir)
	data, _ := os.ReadFile(iso)
	// Shrink the recorded volume size along with the file, as a careless
	// tool might, so only the file read can notice.
	cut := len(data) - 700_000 // xorriso pads 300 KiB; this cuts into file data
	cut -= cut % 2048
	data = data[:cut]
	blocks := uint32(cut / 2048)
	pvd := 16 * 2048
	data[pvd+80], data[pvd+81], data[pvd+82], data[pvd+83] = byte(blocks), byte(blocks>>8), byte(blocks>>16), byte(blocks>>24)
	bad := filepath.Join(t.TempDir(), "short.iso")
	os.WriteFile(bad, data, 0o644)
	e := newEnv(t)
	_, err := e.importer().Import(context.Background(), distro.Request{Name: "short", Release: "centos7.2", Source: bad})
	var ie *distro.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err %v; want an InputError naming the image", err)
	}
	t.Log(err)
	e.notRegistered(t, "short")
	if entries, _ := os.ReadDir(filepath.Join(e.data, "distros")); len(entries) != 0 {
		t.Errorf("distros/ holds %v: staging of bad input must go", entries)
	}
}

func TestImportChecksumMismatch(t *testing.T) {
	tr := makeTree(t, true, "images/pxeboot/initrd.img")
	e := newEnv(t)
	_, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir})
	if err == nil || !strings.Contains(err.Error(), "images/pxeboot/initrd.img: checksum mismatch") {
		t.Fatalf("err %v; want a checksum mismatch naming the initrd", err)
	}
	t.Log(err)
	e.notRegistered(t, "centos7.2")
	if entries, _ := os.ReadDir(filepath.Join(e.data, "distros")); len(entries) != 0 {
		t.Errorf("distros/ holds %v after a checksum mismatch", entries)
	}
}

func TestImportNoKernel(t *testing.T) {
	tr := makeTree(t, true, "")
	os.Remove(filepath.Join(tr.dir, "images/pxeboot/vmlinuz"))
	e := newEnv(t)
	_, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir})
	if err == nil || !strings.Contains(err.Error(), "no kernel") || !strings.Contains(err.Error(), "images/pxeboot/vmlinuz") {
		t.Fatalf("err %v", err)
	}
	e.notRegistered(t, "centos7.2")
}

func TestImportInterruptedResumes(t *testing.T) {
	tr := makeTree(t, true, "")
	iso := makeISO(t, tr.dir)
	e := newEnv(t)
	im := e.importer()
	stopAfter := 7
	n := 0
	im.AfterFile = func(string) error {
		if n++; n == stopAfter {
			return errors.New("simulated crash")
		}
		return nil
	}
	_, err := im.Import(context.Background(), distro.Request{Name: "centos7.2", Source: iso})
	if err == nil || !strings.Contains(err.Error(), "rerun the same command to resume") {
		t.Fatalf("err %v", err)
	}
	t.Log(err)
	e.notRegistered(t, "centos7.2")
	staging := filepath.Join(e.data, "distros", ".staging-centos7.2")
	if _, err := os.Stat(staging); err != nil {
		t.Fatalf("staging gone after an interruption: %v", err)
	}
	// A torn last journal line, as a crash mid-append leaves, is ignored.
	jf, _ := os.OpenFile(staging+".json", os.O_APPEND|os.O_WRONLY, 0)
	jf.WriteString(`{"kind":"file","path":"Packages/pkg`)
	jf.Close()

	// Cancelling the context stops the second run partway as well.
	ctx, cancel := context.WithCancel(context.Background())
	m := 0
	im.AfterFile = func(string) error {
		if m++; m == 3 {
			cancel()
		}
		return nil
	}
	_, err = im.Import(ctx, distro.Request{Name: "centos7.2", Source: iso})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v; want context.Canceled", err)
	}
	t.Log(err)
	e.notRegistered(t, "centos7.2")

	im.AfterFile = nil
	res, err := im.Import(context.Background(), distro.Request{Name: "centos7.2", Source: iso})
	if err != nil {
		t.Fatal(err)
	}
	if want := stopAfter + 3; res.Resumed != want || res.Copied != len(tr.files)-want {
		t.Errorf("resumed %d, copied %d; want %d resumed of %d", res.Resumed, res.Copied, want, len(tr.files))
	}
	e.checkServed(t, "centos7.2", tr)
	if _, err := os.Stat(staging + ".json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal left behind: %v", err)
	}
}

// A staged file that was damaged after it was journaled (a bit flipped on
// disk, say) but has the right size is trusted: resuming is about crashes,
// and a crash leaves a file unjournaled, not wrong. One with the wrong size
// is copied again.
func TestImportResumeRecopiesShortFile(t *testing.T) {
	tr := makeTree(t, false, "")
	e := newEnv(t)
	im := e.importer()
	im.AfterFile = func(p string) error {
		if p == "images/pxeboot/vmlinuz" {
			return errors.New("simulated crash")
		}
		return nil
	}
	if _, err := im.Import(context.Background(), distro.Request{Name: "el7", Release: "rhel7", Source: tr.dir}); err == nil {
		t.Fatal("no error from the simulated crash")
	}
	staged := filepath.Join(e.data, "distros", ".staging-el7", "images/pxeboot/vmlinuz")
	if err := os.Truncate(staged, 10); err != nil {
		t.Fatal(err)
	}
	im.AfterFile = nil
	if _, err := im.Import(context.Background(), distro.Request{Name: "el7", Release: "rhel7", Source: tr.dir}); err != nil {
		t.Fatal(err)
	}
	e.checkServed(t, "el7", tr)
}

// A changed source invalidates what was staged from the old one.
func TestImportResumeOtherSourceStartsOver(t *testing.T) {
	tr1 := makeTree(t, true, "")
	tr2 := makeTree(t, true, "")
	e := newEnv(t)
	im := e.importer()
	im.AfterFile = func(string) error { return errors.New("crash") }
	im.Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr1.dir})
	im.AfterFile = nil
	res, err := im.Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr2.dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 0 {
		t.Errorf("resumed %d files from another source", res.Resumed)
	}
	e.checkServed(t, "centos7.2", tr2)
}

func TestImportFallbackLayout(t *testing.T) {
	tr := makeTree(t, false, "")
	e := newEnv(t)
	res, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Layout.Treeinfo != nil || len(res.Verified) != 0 {
		t.Errorf("layout %+v", res.Layout)
	}
	d, err := e.in.Store.Distro(context.Background(), "centos7.2")
	if err != nil {
		t.Fatal(err)
	}
	// The release comes from the name when nothing else says it.
	if d.Release != "centos7.2" || d.Kernel != "images/pxeboot/vmlinuz" || d.Stage2 != "" {
		t.Errorf("registered %+v", d)
	}
	e.checkServed(t, "centos7.2", tr)

	// Without a .treeinfo, a name that is no release needs --release.
	_, err = e.importer().Import(context.Background(), distro.Request{Name: "mytree", Source: tr.dir})
	if err == nil || !strings.Contains(err.Error(), "--release") {
		t.Fatalf("err %v", err)
	}
	e.notRegistered(t, "mytree")
}

// A boot-only tree (stage2, no repository) points inst.stage2 at the tree.
func TestImportBootOnlyTree(t *testing.T) {
	tr := makeTree(t, false, "")
	os.RemoveAll(filepath.Join(tr.dir, "repodata"))
	delete(tr.files, "repodata/repomd.xml")
	e := newEnv(t)
	if _, err := e.importer().Import(context.Background(), distro.Request{Name: "netinst", Release: "rhel9.4", Source: tr.dir}); err != nil {
		t.Fatal(err)
	}
	d, _ := e.in.Store.Distro(context.Background(), "netinst")
	if d == nil || d.Stage2 != "." || d.Release != "rhel9.4" {
		t.Errorf("registered %+v", d)
	}
}

func TestImportNameOwnedByConfig(t *testing.T) {
	tr := makeTree(t, true, "")
	e := newEnv(t)
	for _, name := range []string{"owned", "ownedprofile"} {
		_, err := e.importer().Import(context.Background(), distro.Request{Name: name, Release: "rhel9", Source: tr.dir})
		if err == nil || !strings.Contains(err.Error(), "is declared in "+e.in.Config().Path) {
			t.Fatalf("%s: err %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(e.data, "distros")); err == nil {
			t.Errorf("%s: distros/ created before refusing a declared name", name)
		}
	}
	d, err := e.in.Store.Distro(context.Background(), "owned")
	if err != nil || d.Tree != "/nonexistent" {
		t.Errorf("declared distro changed: %+v, %v", d, err)
	}
	// The store refuses too, should the file gain the name after the check.
	im := e.importer()
	im.Config = nil
	_, err = im.Import(context.Background(), distro.Request{Name: "owned", Release: "rhel9", Source: tr.dir})
	if err == nil || !strings.Contains(err.Error(), "declared in the config file") {
		t.Fatalf("store check: err %v", err)
	}

	// The tree is in place and the journal says so: once the file gives
	// the name up, rerunning the import only registers it.
	if _, err := os.Stat(filepath.Join(e.data, "distros", "owned", ".treeinfo")); err != nil {
		t.Fatalf("tree not in place: %v", err)
	}
	cfg := e.in.Config().Path
	if err := os.WriteFile(cfg, []byte("server:\n  data_dir: data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.in.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	im.Config = e.in.Config()
	res, err := im.Import(context.Background(), distro.Request{Name: "owned", Release: "rhel9", Source: tr.dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 0 || res.Resumed != len(tr.files) {
		t.Errorf("copied %d, resumed %d: a placed tree is registered, not copied again", res.Copied, res.Resumed)
	}
	e.checkServed(t, "owned", tr)
}

// Two imports of one name at once: the second is refused, and the first
// finishes unharmed.
func TestImportConcurrentSameName(t *testing.T) {
	tr := makeTree(t, true, "")
	e := newEnv(t)
	im := e.importer()
	var second error
	im.AfterFile = func(string) error {
		if second == nil {
			_, second = e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir})
			if second == nil {
				second = errors.New("the second import succeeded")
			}
		}
		return nil
	}
	if _, err := im.Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second.Error(), "another import of this name is running") {
		t.Errorf("second import: %v", second)
	}
	e.checkServed(t, "centos7.2", tr)
}

func TestImportBadNameAndExisting(t *testing.T) {
	tr := makeTree(t, true, "")
	e := newEnv(t)
	for _, name := range []string{"", "../x", ".hidden", "a/b", "a b"} {
		if _, err := e.importer().Import(context.Background(), distro.Request{Name: name, Source: tr.dir}); err == nil || !strings.Contains(err.Error(), "bad name") {
			t.Errorf("name %q: err %v", name, err)
		}
	}
	if _, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir}); err != nil {
		t.Fatal(err)
	}
	_, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second import: %v", err)
	}
	// The first import is untouched.
	e.checkServed(t, "centos7.2", tr)
}

func TestImportLink(t *testing.T) {
	tr := makeTree(t, true, "")
	e := newEnv(t)
	// Keep the source and the data directory on one filesystem.
	e.data = filepath.Join(filepath.Dir(tr.dir), "data")
	res, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir, Link: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Linked != len(tr.files) || len(res.Verified) != 3 {
		t.Errorf("linked %d of %d, verified %v (warnings %v)", res.Linked, len(tr.files), res.Verified, res.Warnings)
	}
	a, _ := os.Stat(filepath.Join(tr.dir, "images/pxeboot/vmlinuz"))
	b, _ := os.Stat(filepath.Join(e.data, "distros/centos7.2/images/pxeboot/vmlinuz"))
	if !os.SameFile(a, b) {
		t.Error("the kernel was not hard-linked")
	}
	e.checkServed(t, "centos7.2", tr)

	iso := makeISO(t, tr.dir)
	if _, err := e.importer().Import(context.Background(), distro.Request{Name: "other", Source: iso, Link: true}); err == nil || !strings.Contains(err.Error(), "--link needs a directory") {
		t.Errorf("--link with an ISO: %v", err)
	}
}

func TestImportSymlinkedFile(t *testing.T) {
	tr := makeTree(t, false, "")
	outside := filepath.Join(t.TempDir(), "kernel")
	os.WriteFile(outside, tr.files["images/pxeboot/vmlinuz"], 0o644)
	k := filepath.Join(tr.dir, "images/pxeboot/vmlinuz")
	os.Remove(k)
	if err := os.Symlink(outside, k); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	if _, err := e.importer().Import(context.Background(), distro.Request{Name: "centos7.2", Source: tr.dir}); err != nil {
		t.Fatal(err)
	}
	e.checkServed(t, "centos7.2", tr)
}

func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	now := int64(0)
	p := &distro.Progress{W: &out, Terminal: true, Label: "import x", Now: func() time.Time { return time.Unix(0, now) }}
	p.Start(4<<20, 2)
	for range 4 {
		now += int64(time.Second)
		p.Add(1 << 20)
	}
	p.FileDone()
	p.Finish()
	s := out.String()
	if !strings.Contains(s, "\rimport x [") || !strings.Contains(s, "100% 4.0 MiB/4.0 MiB 1.0 MiB/s") || !strings.HasSuffix(s, "\n") {
		t.Errorf("bar output %q", s)
	}
	if strings.Count(s, "\n") != 1 {
		t.Errorf("a terminal bar redraws one line; got %q", s)
	}
}

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	now := int64(0)
	p := &distro.Progress{W: &out, Label: "import x", Every: 5 * time.Second, Now: func() time.Time { return time.Unix(0, now) }}
	p.Start(10<<20, 10)
	for range 10 {
		now += int64(time.Second)
		p.Add(1 << 20)
		p.FileDone()
	}
	p.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || strings.Contains(out.String(), "\r") {
		t.Fatalf("plain output (want lines at 5s, 10s and the end):\n%s", out.String())
	}
	if lines[0] != "import x: 5.0 MiB of 10.0 MiB (50%), 4 of 10 files, 1.0 MiB/s" {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.HasPrefix(lines[2], "import x: 10.0 MiB of 10.0 MiB (100%), 10 of 10 files") {
		t.Errorf("last line %q", lines[2])
	}
}
