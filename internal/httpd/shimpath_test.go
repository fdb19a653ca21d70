package httpd

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// shim under UEFI HTTP boot asks for <dir>//grubx64.efi and follows no
// redirect: the file is served as it is asked for, never a 301.
func TestDoubleSlashServedNotRedirected(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "efi"), 0o755)
	os.WriteFile(filepath.Join(root, "efi", "grubx64.efi"), []byte("grub"), 0o644)
	st := storetest.NewFake()
	cfg := &inventory.Config{Menu: inventory.Menu{Unknown: "menu"}, Server: inventory.Server{Root: root}}
	get := func() *inventory.Config { return cfg }
	b := &boot.Booter{Store: st, Config: get}
	h := (&Server{Booter: b, Files: &bootfiles.Files{Booter: b, Store: st, Config: get}, Store: st, Log: discard()}).Handler()
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/efi//grubx64.efi", 200},
		{"HEAD", "//efi//grubx64.efi", 200},
		{"GET", "/efi//../efi/grubx64.efi", 404},
		{"POST", "/cb//built", 404},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.code || (c.code == 200 && c.method == "GET" && w.Body.String() != "grub") {
			t.Errorf("%s %s: %d %q, want %d", c.method, c.path, w.Code, w.Body.String(), c.code)
		}
	}
}
