package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/metrics"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

const browserConfig = `
server:
  http: "127.0.0.1:8080"
  address_v4: 127.0.0.1
  data_dir: data
  # The test plays the installer from 127.0.0.1, not the host's address.
  token_any_address: true
distros:
  - name: el9
    release: rhel9
    arch: x86_64
    tree: tree
    kernel: images/pxeboot/vmlinuz
    initrd: [images/pxeboot/initrd.img]
profiles:
  - name: web
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
  - name: db
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
hosts:
  - name: web01
    macs: ["52:54:00:00:01:01"]
    ipv4: 192.0.2.11/24
    profile: web
    netboot: install
  - name: app01
    macs: ["52:54:00:00:01:02"]
    ipv4: 192.0.2.12/24
    profile: web
    netboot: install
  - name: db01
    macs: ["52:54:00:00:01:03"]
    ipv4: 192.0.2.13/24
    profile: db
    netboot: local
`

// installSoFar is web01's timeline up to the end of its package
// installation, as kickstand records it, and app01's DHCP exchange that
// no TFTP request followed (the "check 69/udp" stall).
func installSoFar(now time.Time) []store.Event {
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	ev := func(host string, ago time.Duration, kind, detail string, data map[string]any) store.Event {
		return store.Event{Host: host, At: at(ago), Kind: kind, Detail: detail, Data: data}
	}
	evs := []store.Event{
		ev("web01", 9*time.Minute, "state", "local -> install (by cli)", map[string]any{"from": "local", "to": "install", "by": "cli"}),
		ev("web01", 8*time.Minute, "dhcp.discover", "discover 52:54:00:00:01:01", map[string]any{"family": 4, "firmware": "bios"}),
		ev("web01", 8*time.Minute, "dhcp.ack", "ack 52:54:00:00:01:01 192.0.2.11 boot undionly.kpxe", map[string]any{"family": 4, "firmware": "bios", "boot_file": "undionly.kpxe"}),
		ev("web01", 8*time.Minute, "tftp.file", "undionly.kpxe 70144 bytes in 120ms", map[string]any{"class": "loader", "completed": true, "bytes": 70144}),
		ev("web01", 8*time.Minute, "http.script", "GET /boot.ipxe", map[string]any{"status": 200, "bytes": 412}),
		ev("web01", 7*time.Minute, "http.kernel", "GET /distros/el9/images/pxeboot/vmlinuz", map[string]any{"status": 200, "bytes": 13_000_000}),
		ev("web01", 7*time.Minute, "http.initrd", "GET /distros/el9/images/pxeboot/initrd.img", map[string]any{"status": 200, "bytes": 98_000_000}),
		ev("web01", 6*time.Minute, "http.kickstart", "GET /ks/<token>", map[string]any{"status": 200, "bytes": 3100}),
		ev("web01", 6*time.Minute, "syslog", "dracut-initqueue[842]: anaconda: fetching kickstart from http://192.0.2.1/ks/<token>", nil),
		ev("web01", 5*time.Minute, "http.stage2", "GET /distros/el9/images/install.img", map[string]any{"status": 200, "bytes": 800_000_000}),
		ev("web01", 5*time.Minute, "http.repodata", "GET /distros/el9/BaseOS/repodata/repomd.xml", map[string]any{"status": 200, "bytes": 4200}),
		ev("web01", 4*time.Minute, "syslog", "anaconda[1201]: Warning: /dev/sdb has no partition table", nil),
		ev("web01", 3*time.Minute, "syslog", "anaconda[1201]: Error populating transaction, retrying", nil),
	}
	for i := 0; i < 6; i++ {
		evs = append(evs, ev("web01", time.Duration(150-20*i)*time.Second, "http.package", fmt.Sprintf("GET /distros/el9/BaseOS/Packages/pkg-%d.rpm", i), map[string]any{"status": 200, "bytes": 1_200_000}))
	}
	evs = append(evs,
		ev("web01", 30*time.Second, "syslog", "anaconda[1201]: Running post-installation scripts", nil),
		ev("app01", 6*time.Minute, "state", "local -> install (by cli)", map[string]any{"from": "local", "to": "install", "by": "cli"}),
		ev("app01", 5*time.Minute, "dhcp.ack", "ack 52:54:00:00:01:02 192.0.2.12 boot undionly.kpxe", map[string]any{"family": 4, "firmware": "bios", "boot_file": "undionly.kpxe"}),
	)
	return evs
}

func chromiumFlags(t *testing.T, exe string) []chromedp.ExecAllocatorOption {
	// Chromium's helpers may still be writing its profile for a moment
	// after the browser is gone, which t.TempDir's cleanup takes for a
	// failure: the directory is removed with a few tries instead.
	profile, err := os.MkdirTemp("", "kickstand-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s left behind", profile)
	})
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		// Loopback only: any other name fails to resolve, so nothing the
		// browser might try leaves the machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1360, 860),
	}
}

// TestBrowser is issue 6's UI acceptance test: in headless Chromium, the
// hosts page shows an installing host move to built and local when its
// built callback arrives (through the event stream, without a reload),
// then the host's page shows the callback in its timeline; screenshots
// are kept as artifacts.
func TestBrowser(t *testing.T) {
	exe := needTool(t, "chromium")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte(browserConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := server.Open(ctx, cfg, server.Options{DataDir: filepath.Join(dir, "data"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Store.AppendEvents(ctx, installSoFar(time.Now())); err != nil {
		t.Fatal(err)
	}
	rec := in.Events
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	m := metrics.New(in.Store)
	m.Attach(rec)
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	token := api.NewToken()
	if err := in.Store.CreateAPIToken(ctx, store.APIToken{Name: "operator", Hash: api.HashToken(token), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h := in.HTTPServer(m)
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	defer srv.CloseClientConnections()

	actx, acancel := chromedp.NewExecAllocator(ctx, chromiumFlags(t, exe)...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 120*time.Second)
	defer tcancel()

	// Script errors and CSP violations fail the test.
	var mu sync.Mutex
	var pageErrors []string
	chromedp.ListenTarget(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			pageErrors = append(pageErrors, e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				pageErrors = append(pageErrors, "console.error: "+strings.Join(args, " "))
			}
		}
	})

	web01 := `#hosts tr[data-host="web01"]`
	var stage, cause string
	err = chromedp.Run(bctx,
		// /ui redirects to /ui/; reads need a token, so the page asks
		// for one and the operator pastes it once.
		chromedp.Navigate(srv.URL+"/ui"),
		chromedp.WaitVisible(`#token-input`),
		chromedp.SendKeys(`#token-input`, token),
		chromedp.Click(`#token-save`),
		waitFor(web01+`[data-state="install"]`),
		waitFor(`#hosts tr[data-host="app01"]`),
		text(web01+` td:nth-child(5)`, &stage),
		text(`#hosts tr[data-host="app01"] td.diag`, &cause),
	)
	if err != nil {
		t.Fatalf("hosts page: %v (page errors: %v)", err, pageErrors)
	}
	if !strings.EqualFold(stage, "installing") {
		t.Errorf("web01's stage = %q, want installing", stage)
	}
	// A machine that matches no host: its request is not on any timeline,
	// but the unknown clients' view shows it.
	if resp, err := http.Get(srv.URL + "/boot.ipxe?mac=52:54:00:99:99:99"); err == nil {
		resp.Body.Close()
	}
	var unknown string
	if err := chromedp.Run(bctx, waitFor(`#unknown tbody tr`), text(`#unknown tbody`, &unknown)); err != nil {
		t.Fatalf("unknown clients view: %v (page errors: %v)", err, pageErrors)
	}
	if !strings.Contains(unknown, "/boot.ipxe") {
		t.Errorf("unknown clients view = %q", unknown)
	}
	if !strings.Contains(cause, "69/udp") && !strings.Contains(cause, "no TFTP") {
		t.Errorf("app01's diagnosis = %q, want the DHCP-without-TFTP stall", cause)
	}

	// The installer's %post calls back; the page must follow by itself.
	rec1, err := in.Store.Host(ctx, "web01")
	if err != nil || rec1.Token == "" {
		t.Fatalf("web01 = %+v, %v", rec1, err)
	}
	resp, err := http.Post(srv.URL+"/cb/"+rec1.Token+"/built", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("built callback = %d", resp.StatusCode)
	}
	var hostsPNG []byte
	var link string
	err = chromedp.Run(bctx,
		waitFor(web01+`[data-state="local"]`),
		text(web01+` td:nth-child(5)`, &stage),
		chromedp.Evaluate(`document.querySelector('`+web01+` td.name a').href`, &link),
		chromedp.FullScreenshot(&hostsPNG, 100),
	)
	if err != nil {
		t.Fatalf("hosts page after built: %v (page errors: %v)", err, pageErrors)
	}
	if !strings.EqualFold(stage, "built") {
		t.Errorf("web01's stage after the callback = %q, want built", stage)
	}

	var state, diag string
	var hostPNG []byte
	if !strings.HasSuffix(link, "/ui/host.html?name=web01") {
		t.Errorf("web01's link = %q", link)
	}
	err = chromedp.Run(bctx,
		// The row is redrawn on every event, so follow its link rather
		// than click a node that may be replaced under the pointer.
		chromedp.Navigate(link),
		waitFor(`#timeline tr[data-kind="callback.built"]`),
		waitFor(`#timeline tr.syslog.err`),
		waitFor(`#host-state`),
		text(`#host-state`, &state),
		text(`#diag-stage`, &diag),
		chromedp.FullScreenshot(&hostPNG, 100),
	)
	if err != nil {
		t.Fatalf("host page: %v (page errors: %v)", err, pageErrors)
	}
	if state != "local" || !strings.EqualFold(diag, "built") {
		t.Errorf("host page shows state %q, stage %q; want local, built", state, diag)
	}

	// Build from the page (with its confirmation click) goes through the
	// API with the pasted token and shows up in the live timeline.
	err = chromedp.Run(bctx,
		chromedp.Click(`#build`),
		waitFor(`#build.danger`),
		chromedp.Click(`#build`),
		waitFor(`#host-state.install`),
		waitFor(`#timeline tr[data-kind="state"]:last-child`),
	)
	if err != nil {
		t.Fatalf("build from the page: %v (page errors: %v)", err, pageErrors)
	}
	if r, _ := in.Store.Host(ctx, "web01"); r.State != inventory.StateInstall || r.Token == rec1.Token {
		t.Errorf("after Build: state %s, token renewed %v", r.State, r.Token != rec1.Token)
	}

	// The stalled host's page: the cause and what to check.
	var appPNG []byte
	var hint string
	err = chromedp.Run(bctx,
		chromedp.Navigate(srv.URL+"/ui/host.html?name=app01"),
		waitFor(`#diag-cause`),
		text(`#diag-hint`, &hint),
		chromedp.FullScreenshot(&appPNG, 100),
	)
	if err != nil {
		t.Fatalf("app01's page: %v (page errors: %v)", err, pageErrors)
	}
	if !strings.Contains(hint, "69/udp") {
		t.Errorf("app01's hint = %q", hint)
	}

	mu.Lock()
	if len(pageErrors) > 0 {
		t.Errorf("errors in the page: %v", pageErrors)
	}
	mu.Unlock()

	out := os.Getenv("KICKSTAND_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	}
	for name, png := range map[string][]byte{"ui-hosts.png": hostsPNG, "ui-host-web01.png": hostPNG, "ui-host-app01.png": appPNG} {
		if len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Errorf("%s is not a PNG", name)
			continue
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}

// waitFor waits until an element matching sel is shown. It runs in the
// page, in one step, so an element the page redraws meanwhile (rows are
// replaced on every event) cannot make it fail.
func waitFor(sel string) chromedp.Action {
	q, _ := json.Marshal(sel)
	return chromedp.Poll(fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.offsetParent !== null; })()`, q), nil,
		chromedp.WithPollingInterval(50*time.Millisecond))
}

// text reads an element's text in one step, for the same reason.
func text(sel string, res *string) chromedp.Action {
	q, _ := json.Marshal(sel)
	return chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%s).textContent`, q), res)
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (KICKSTAND_REQUIRE_PEERS=1) but missing: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}
