package webui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

// TestBrowserDiscovered: the Discovered page lists what a machine's
// firmware reported (text only: a serial with markup stays text), and
// its Assign button makes the machine a host in install through the API.
func TestBrowserDiscovered(t *testing.T) {
	exe := needTool(t, "chromium")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	os.WriteFile(cfg, []byte(strings.Replace(browserConfig, "distros:", "menu:\n  unknown: discover\ndistros:", 1)), 0o644)
	in, err := server.Open(ctx, cfg, server.Options{DataDir: filepath.Join(dir, "data"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	now := time.Now()
	for _, d := range []store.Discovered{
		{MAC: "52:54:00:17:01:01", Proof: "lease", Addr: "192.0.2.150", UUID: "8a9b0c1d-2e3f-4051-8697-a8b9cadbec11", Manufacturer: "Rackmaker", Product: "RM-2000", Serial: "<b>SN-1</b>", Asset: "ASSET-7", Platform: "pcbios", BuildArch: "i386", LastSeen: now},
	} {
		if _, err := in.Store.ReportDiscovered(ctx, d, store.DiscoveryLimits{Max: 10}); err != nil {
			t.Fatal(err)
		}
	}
	token := api.NewToken()
	in.Store.CreateAPIToken(ctx, store.APIToken{Name: "operator", Hash: api.HashToken(token), CreatedAt: now})
	srv := httptest.NewServer(in.HTTPServer(nil).Handler())
	defer srv.Close()
	defer srv.CloseClientConnections()

	actx, acancel := chromedp.NewExecAllocator(ctx, chromiumFlags(t, exe)...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 90*time.Second)
	defer tcancel()
	var mu sync.Mutex
	var pageErrors []string
	chromedp.ListenTarget(bctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			pageErrors = append(pageErrors, e.ExceptionDetails.Error())
			mu.Unlock()
		}
	})
	row := `#discovered tr[data-mac="52:54:00:17:01:01"]`
	var serial, host string
	err = chromedp.Run(bctx,
		chromedp.Navigate(srv.URL+"/ui/discovered.html"),
		chromedp.WaitVisible(`#token-input`),
		chromedp.SendKeys(`#token-input`, token),
		chromedp.Click(`#token-save`),
		waitFor(row+` .assign-form`),
		text(row+` td:nth-child(5)`, &serial),
		chromedp.SendKeys(row+` .assign-name`, "rack-ui-1"),
		chromedp.SetValue(row+` .assign-profile`, "db"),
		chromedp.Click(row+` button.assign`),
		waitFor(`#discovered tr[data-host="rack-ui-1"] a.assigned`),
		text(`#discovered tr[data-host="rack-ui-1"] a.assigned`, &host),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if serial != "<b>SN-1</b>" || host != "rack-ui-1" {
		t.Errorf("serial cell %q, host %q", serial, host)
	}
	rec, err := in.Store.Host(ctx, "rack-ui-1")
	if err != nil || rec.State != inventory.StateInstall || rec.Profile != "db" || rec.MACs[0] != "52:54:00:17:01:01" {
		t.Fatalf("the assigned host: %+v, %v", rec, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("page errors: %v", pageErrors)
	}
}
