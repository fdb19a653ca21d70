package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

const distroTestConfig = `
server:
  http: "127.0.0.1:%d"
  address_v4: 127.0.0.1
  data_dir: data
distros:
  - name: owned
    release: rhel9
    tree: ownedtree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: ownedprofile
    distro: owned
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
`

// distroTree writes a small CentOS 7-like tree with a .treeinfo and
// returns its directory and files.
func distroTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "media")
	files := map[string][]byte{
		"images/pxeboot/vmlinuz":    make([]byte, 256<<10),
		"images/pxeboot/initrd.img": make([]byte, 128<<10),
		"LiveOS/squashfs.img":       make([]byte, 64<<10),
		"repodata/repomd.xml":       []byte("<repomd/>\n"),
	}
	for _, b := range files {
		rand.Read(b)
	}
	k := sha256.Sum256(files["images/pxeboot/vmlinuz"])
	files[".treeinfo"] = fmt.Appendf(nil, "[general]\nfamily = CentOS\nversion = 7\narch = x86_64\n"+
		"[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n"+
		"[stage2]\nmainimage = LiveOS/squashfs.img\n[checksums]\nimages/pxeboot/vmlinuz = sha256:%x\n", k)
	for p, b := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func distroConfig(t *testing.T, port int) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "ownedtree"), 0o755)
	os.WriteFile(filepath.Join(dir, "ownedtree", "vmlinuz"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(dir, "ownedtree", "initrd.img"), []byte("i"), 0o644)
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, distroTestConfig, port), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runDistro(t *testing.T, g *globals, args ...string) (string, string, error) {
	t.Helper()
	cmd := newDistroCmd(g)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestDistroImportAndList(t *testing.T) {
	media, _ := distroTree(t)
	cfg := distroConfig(t, 8080)
	g := &globals{config: cfg, output: "text"}

	out, errOut, err := runDistro(t, g, "import", "--name", "centos7.2", media)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	for _, want := range []string{"imported centos7.2: 5 files", "1 checksums verified", "release  centos7.2", "kernel   images/pxeboot/vmlinuz", "stage2   LiveOS/squashfs.img", "repos    ."} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	// Not a terminal: progress comes as plain lines, never a redrawn bar.
	if !strings.Contains(errOut, "import centos7.2: ") || strings.Contains(errOut, "\r") {
		t.Errorf("progress on a non-terminal:\n%q", errOut)
	}

	g.output = "json"
	out, _, err = runDistro(t, g, "list")
	if err != nil {
		t.Fatal(err)
	}
	var ds []inventory.Distro
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	names := map[string]inventory.Distro{}
	for _, d := range ds {
		names[d.Name] = d
	}
	if d := names["centos7.2"]; d.Release != "centos7.2" || d.Tree != filepath.Join(filepath.Dir(cfg), "data", "distros", "centos7.2") {
		t.Errorf("listed %+v", d)
	}
	if _, ok := names["owned"]; !ok {
		t.Errorf("declared distro missing from the list: %v", ds)
	}
	g.output = "text"
	out, _, _ = runDistro(t, g, "list")
	if !regexp.MustCompile(`(?m)^centos7\.2\s+centos7\.2\s+x86_64\s+images/pxeboot/vmlinuz\s+/`).MatchString(out) {
		t.Errorf("text list:\n%s", out)
	}

	_, _, err = runDistro(t, g, "import", "--name", "owned", media)
	if err == nil || !strings.Contains(err.Error(), "distro owned is declared in "+cfg) {
		t.Errorf("import over a declared name: %v", err)
	}
	_, _, err = runDistro(t, g, "import", media)
	if err == nil || !strings.Contains(err.Error(), `"name" not set`) {
		t.Errorf("import without --name: %v", err)
	}
}

// TestDistroImportServed imports with the command, then runs the real
// binary's serve on the same config and data, and fetches the tree with
// curl, as an installer would.
func TestDistroImportServed(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatal("curl is required")
		}
		t.Skip("curl not installed")
	}
	media, files := distroTree(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := distroConfig(t, port)
	if _, errOut, err := runDistro(t, &globals{config: cfg}, "import", "--name", "centos7.2", media); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}

	bin := filepath.Join(t.TempDir(), "kickstand")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "serve", "--config", cfg)
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(os.Interrupt); srv.Wait() })
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "http listening") {
				up <- true
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(20 * time.Second):
		t.Fatal("kickstand serve did not start")
	}
	for p, want := range files {
		got, err := exec.Command("curl", "-sf", fmt.Sprintf("http://127.0.0.1:%d/distros/centos7.2/%s", port, p)).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("curl %s: %v, %d bytes (want %d)", p, err, len(got), len(want))
		}
	}
}
