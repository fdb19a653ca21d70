package storm

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

func TestParseIPXE(t *testing.T) {
	script := `#!ipxe
# kickstand: storm-00001
echo kickstand: installing storm-00001 (rhel9)
kernel http://198.18.0.1:8080/distros/storm/vmlinuz initrd=i0 console=ttyS0 inst.ks=http://198.18.0.1:8080/ks/abc123 inst.repo=http://198.18.0.1:8080/distros/storm/
initrd --name i0 http://198.18.0.1:8080/distros/storm/initrd.img
boot || goto failed
`
	s, err := parseIPXE(script)
	if err != nil {
		t.Fatal(err)
	}
	if s.kernel != "http://198.18.0.1:8080/distros/storm/vmlinuz" || len(s.initrds) != 1 ||
		s.initrds[0] != "http://198.18.0.1:8080/distros/storm/initrd.img" || s.kickstart != "http://198.18.0.1:8080/ks/abc123" {
		t.Errorf("parsed %+v", s)
	}
	cb, err := callbackURL(s.kickstart)
	if err != nil || cb != "http://198.18.0.1:8080/cb/abc123/built" {
		t.Errorf("callback %q, %v", cb, err)
	}
	for _, bad := range []string{"", "kernel http://x/k", "#!ipxe\necho nothing\n", "#!ipxe\nkernel tftp://x/k\n"} {
		if _, err := parseIPXE(bad); err == nil {
			t.Errorf("parsed %q without error", bad)
		}
	}
	if _, err := callbackURL("http://x/distros/k"); err == nil {
		t.Error("callback URL from a URL without /ks/")
	}
}

func TestStats(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := stats("x", d)
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P95 != 95*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Errorf("%+v", s)
	}
	if s := stats("y", nil); s.Count != 0 || s.Max != 0 {
		t.Errorf("empty: %+v", s)
	}
}

func TestParseTFTP(t *testing.T) {
	p, err := parseTFTP([]byte("\x00\x06blksize\x001468\x00tsize\x0070000\x00"))
	if err != nil || p.op != opOACK || p.options["blksize"] != "1468" || p.options["tsize"] != "70000" {
		t.Errorf("OACK: %+v %v", p, err)
	}
	p, err = parseTFTP([]byte{0, 3, 0, 7, 'a', 'b'})
	if err != nil || p.op != opDATA || p.block != 7 || string(p.data) != "ab" {
		t.Errorf("DATA: %+v %v", p, err)
	}
	p, err = parseTFTP([]byte("\x00\x05\x00\x00server busy\x00"))
	if err != nil || p.op != opERROR || p.msg != "server busy" {
		t.Errorf("ERROR: %+v %v", p, err)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 3, 0}, {0, 9}, []byte("\x00\x06blksize\x00")} {
		if _, err := parseTFTP(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func FuzzParseIPXE(f *testing.F) {
	f.Add("#!ipxe\nkernel http://a/k inst.ks=http://a/ks/t\ninitrd --name i0 http://a/i\n")
	f.Add("#!ipxe\nkernel --name x\ninitrd\n")
	f.Add("#!ipxe\nchain http://a/b ks=http://a/ks/\n")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseIPXE(s)
		if err == nil && b.kernel == "" {
			t.Error("no error and no kernel")
		}
		if b.kickstart != "" {
			callbackURL(b.kickstart)
		}
	})
}

func FuzzParseTFTP(f *testing.F) {
	f.Add([]byte("\x00\x06blksize\x001468\x00"))
	f.Add([]byte{0, 3, 0, 1, 1, 2, 3})
	f.Add([]byte("\x00\x05\x00\x01File not found\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseTFTP(b)
		if err == nil && p.op == opDATA && len(p.data) != len(b)-4 {
			t.Errorf("DATA of %d bytes from a %d-byte packet", len(p.data), len(b))
		}
	})
}

func TestWriteInventory(t *testing.T) {
	var b bytes.Buffer
	if err := WriteInventory(&b, 300, ServerConfig{Address: netip.MustParseAddr("198.18.0.1"), Interface: "ks0",
		DataDir: "/tmp/d", Templates: "/tmp/t", Tree: "/tmp/tree"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := inventory.Parse("storm.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String()[:500])
	}
	if len(cfg.Hosts) != 300 {
		t.Fatalf("%d hosts", len(cfg.Hosts))
	}
	seen := map[string]bool{}
	for i, h := range cfg.Hosts {
		p, ok := h.Addr4()
		if !ok || p.Addr() != HostAddr(i) || h.MACs[0] != MAC(i).String() || h.Netboot != inventory.StateInstall {
			t.Errorf("host %d: %+v", i, h)
		}
		if seen[p.Addr().String()] {
			t.Errorf("address %v twice", p.Addr())
		}
		seen[p.Addr().String()] = true
	}
}
