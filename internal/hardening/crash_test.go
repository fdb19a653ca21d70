package hardening

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// The crash tests kill kickstand with SIGKILL at random moments and check
// what a restart finds. Each logs its random kill points so that a
// failure can be reproduced by hand.

// integrity runs SQLite's own consistency check on the store file
// (opening it recovers the WAL, as kickstand's own open would).
func integrity(t *testing.T, data string) {
	t.Helper()
	path := filepath.Join(data, "kickstand.db")
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return // killed before the store was created
	}
	db, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("store integrity_check: %q %v", res, err)
	}
}

// openStore opens the store the way kickstand does (WAL recovery
// included) without syncing any config into it.
func openStore(t *testing.T, ctx context.Context, data string) *sqlstore.SQL {
	t.Helper()
	st, err := sqlstore.OpenSQLite(ctx, data)
	if err != nil {
		t.Fatalf("the store does not open after the kill: %v", err)
	}
	return st
}

// importTree writes an install tree of n files (and a .treeinfo with a
// checksum for the kernel) and returns its directory and the SHA-256 of
// every file by path.
func importTree(t *testing.T, n, size int) (string, map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "media")
	sums := map[string]string{}
	put := func(p string, b []byte) {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
		h := sha256.Sum256(b)
		sums[p] = hex.EncodeToString(h[:])
	}
	kernel := randBytes(size)
	put("images/pxeboot/vmlinuz", kernel)
	put("images/pxeboot/initrd.img", randBytes(size))
	put("repodata/repomd.xml", []byte("<repomd/>\n"))
	for i := 0; i < n; i++ {
		put(fmt.Sprintf("Packages/pkg-%04d.rpm", i), randBytes(size))
	}
	put(".treeinfo", fmt.Appendf(nil, "[general]\nfamily = CentOS\nversion = 7\narch = x86_64\n"+
		"[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n"+
		"[checksums]\nimages/pxeboot/vmlinuz = sha256:%s\n", sums["images/pxeboot/vmlinuz"]))
	return dir, sums
}

// TestKillDistroImport kills `kickstand distro import` at random moments:
// afterwards the distro is either not registered at all or registered
// with every file whole, and rerunning the import completes it.
func TestKillDistroImport(t *testing.T) {
	bin := kickstandBin(t)
	rounds, files := 6, 400
	if stress() {
		rounds, files = 40, 2000
	}
	media, sums := importTree(t, files, 64<<10)
	cfgText := "server:\n  http: \"127.0.0.1:8080\"\n  data_dir: data\n"
	ctx, cancel := context.WithTimeout(context.Background(), budget(3*time.Minute))
	defer cancel()

	// How long does a whole import take here?
	fx := newFixture(t, cfgText, nil)
	began := time.Now()
	if out, err := fx.cli(t, bin, "distro", "import", "--name", "whole", media); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	full := time.Since(began)
	t.Logf("a whole import of %d files takes %s", len(sums), full.Round(time.Millisecond))

	for round := 0; round < rounds; round++ {
		fx := newFixture(t, cfgText, nil)
		at := time.Duration(mrand.Int64N(int64(full)))
		name := "centos7"
		cmd := exec.CommandContext(ctx, bin, "--config", fx.cfg, "--data", fx.data, "distro", "import", "--name", name, media)
		must(t, cmd.Start())
		time.Sleep(at)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		finished := err == nil
		integrity(t, fx.data)
		st := openStore(t, ctx, fx.data)
		d, derr := st.Distro(ctx, name)
		st.Close()
		registered := derr == nil
		journal, _ := os.ReadFile(filepath.Join(fx.data, "distros", ".staging-"+name+".json"))
		t.Logf("round %d: killed %s in (import finished first: %v; %d journal lines), registered afterwards: %v",
			round, at.Round(time.Microsecond), finished, strings.Count(string(journal), "\n"), registered)
		if registered {
			checkImported(t, fx.data, d.Tree, media, sums)
		} else if _, err := os.Stat(filepath.Join(fx.data, "distros", name)); err == nil {
			t.Errorf("round %d: distros/%s exists but is not registered", round, name)
		}
		if finished && !registered {
			t.Errorf("round %d: the import said it finished but nothing is registered", round)
		}
		// The rerun resumes (or finds the import done) and completes.
		out, err := fx.cli(t, bin, "distro", "import", "--name", name, media)
		if err != nil && !(registered && strings.Contains(out, "exists")) {
			t.Fatalf("round %d: rerun after the kill: %v\n%s", round, err, out)
		}
		st = openStore(t, ctx, fx.data)
		d, derr = st.Distro(ctx, name)
		st.Close()
		if derr != nil {
			t.Fatalf("round %d: not registered after the rerun: %v\n%s", round, derr, out)
		}
		checkImported(t, fx.data, d.Tree, media, sums)
		if m, _ := filepath.Glob(filepath.Join(fx.data, "distros", ".staging-*")); len(m) > 0 {
			t.Errorf("round %d: staging left after the rerun: %v", round, m)
		}
	}
}

// checkImported compares the imported tree with the source, file by file.
func checkImported(t *testing.T, data, tree, media string, sums map[string]string) {
	t.Helper()
	if !filepath.IsAbs(tree) {
		tree = filepath.Join(data, tree)
	}
	for p, want := range sums {
		b, err := os.ReadFile(filepath.Join(tree, p))
		if err != nil {
			t.Errorf("registered tree %s lacks %s: %v", tree, p, err)
			continue
		}
		h := sha256.Sum256(b)
		if hex.EncodeToString(h[:]) != want {
			t.Errorf("registered tree %s has a damaged %s", tree, p)
		}
	}
}

// inventory writes a config with n hosts of generation gen: hosts
// gen-0..gen-(n-1), every one with vars {gen: gen}. Generations share
// nothing, so any mix is visible.
func inventoryConfig(port, n int, gen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  http: \"127.0.0.1:%d\"\n  data_dir: data\n  templates: templates\n", port)
	b.WriteString("distros:\n  - name: d1\n    release: rhel9\n    arch: x86_64\n    tree: tree\n    kernel: vmlinuz\n    initrd: [initrd.img]\n")
	fmt.Fprintf(&b, "profiles:\n  - name: p-%s\n    distro: d1\n    vars: {ssh_keys: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com\"}\n", gen)
	b.WriteString("hosts:\n")
	for i := 0; i < n; i++ {
		g := 0
		if gen == "b" {
			g = 1
		}
		fmt.Fprintf(&b, "  - name: %s-%d\n    macs: [\"52:54:%02x:%02x:%02x:%02x\"]\n    profile: p-%s\n    netboot: local\n    vars: {gen: %s}\n",
			gen, i, g, i>>16&0xff, i>>8&0xff, i&0xff, gen, gen)
	}
	return b.String()
}

// TestKillInventoryReload edits the inventory, sends SIGHUP and kills
// kickstand at a random moment of the reload: the store then opens
// cleanly and holds the old inventory or the new one, never a mix, and a
// restart applies the file.
func TestKillInventoryReload(t *testing.T) {
	bin := kickstandBin(t)
	rounds, hosts := 6, 1500
	if stress() {
		rounds, hosts = 30, 5000
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget(3*time.Minute))
	defer cancel()
	port := freePort(t, "127.0.0.1")
	fx := newFixture(t, inventoryConfig(port, hosts, "a"), nil)
	srv := start(t, exec.CommandContext(ctx, bin, "serve", "--config", fx.cfg), "http listening")

	// How long does a reload of the whole inventory take?
	fx.write(t, inventoryConfig(port, hosts, "b"))
	began := time.Now()
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "config reloaded", 60*time.Second)
	full := time.Since(began)
	t.Logf("reloading %d hosts takes %s", hosts, full.Round(time.Millisecond))
	gen := "b"
	srv.kill()

	for round := 0; round < rounds; round++ {
		srv = start(t, exec.CommandContext(ctx, bin, "serve", "--config", fx.cfg), "http listening")
		next := map[string]string{"a": "b", "b": "a"}[gen]
		fx.write(t, inventoryConfig(port, hosts, next))
		at := time.Duration(mrand.Int64N(int64(full) * 5 / 4))
		srv.cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(at)
		srv.kill()
		reloaded := strings.Contains(srv.Log(), "config reloaded")

		integrity(t, fx.data)
		st := openStore(t, ctx, fx.data)
		recs, err := st.Hosts(ctx)
		st.Close()
		must(t, err)
		found := storeGeneration(t, recs, hosts)
		t.Logf("round %d: %s -> %s, killed %s after SIGHUP (reload logged: %v): store holds generation %q", round, gen, next, at.Round(time.Microsecond), reloaded, found)
		switch {
		case found != gen && found != next:
			t.Fatalf("round %d: the store holds a mix", round)
		case reloaded && found != next:
			t.Errorf("round %d: the reload was logged as done but the store holds the old inventory", round)
		}
		gen = next
	}
	// A restart applies the file.
	srv = start(t, exec.CommandContext(ctx, bin, "serve", "--config", fx.cfg), "http listening")
	srv.stop(10 * time.Second)
	st := openStore(t, ctx, fx.data)
	recs, err := st.Hosts(ctx)
	st.Close()
	must(t, err)
	if g := storeGeneration(t, recs, hosts); g != gen {
		t.Errorf("after a restart the store holds generation %q, the file %q", g, gen)
	}
}

// storeGeneration says which generation the hosts are, or "mix".
func storeGeneration(t *testing.T, recs []inventory.HostRecord, n int) string {
	t.Helper()
	gens := map[string]int{}
	for _, r := range recs {
		g, _, _ := strings.Cut(r.Name, "-")
		if r.Vars["gen"] != g {
			t.Errorf("host %s has vars gen=%q", r.Name, r.Vars["gen"])
			return "mix"
		}
		gens[g]++
	}
	if len(gens) != 1 {
		t.Errorf("hosts by generation: %v", gens)
		return "mix"
	}
	for g, c := range gens {
		if c != n {
			t.Errorf("generation %s has %d hosts of %d", g, c, n)
			return "mix"
		}
		return g
	}
	return "mix"
}
