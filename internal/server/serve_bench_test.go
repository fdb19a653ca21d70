package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/kickstand/kickstand/internal/server"
)

// BenchmarkServe measures the handler path of a kickstart and of a small
// static file, with the timeline recorder running, without the network:
// what `make bench` compares with nginx, minus the kernel.
func BenchmarkServe(b *testing.B) {
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	os.WriteFile(filepath.Join(dir, "www", "small.txt"), make([]byte, 2048), 0o644)
	cfg := filepath.Join(dir, "k.yaml")
	os.WriteFile(cfg, []byte(`server:
  address_v4: 198.18.0.1
  root: www
distros: [{name: d, release: rhel9, kernel: k, initrd: [i]}]
profiles: [{name: p, distro: d, vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}}]
hosts: [{name: h, macs: ["02:00:00:00:00:01"], ipv4: 198.18.0.2/30, profile: p, netboot: install}]
`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := server.Open(ctx, cfg, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	go in.Events.Run(ctx)
	h := in.HTTPServer(nil).Handler()
	req := func(path string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "198.18.0.2:5000"
		return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("198.18.0.1:8080"))))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req("/boot.ipxe"))
	tok := regexp.MustCompile(`/ks/\S+`).FindString(w.Body.String())
	for _, p := range []string{tok, "/small.txt"} {
		b.Run(p[:3], func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req(p))
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
