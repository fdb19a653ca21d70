package webui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

const liveConfig = `
server:
  address_v4: 127.0.0.1
  data_dir: data
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
  - name: vnc
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
    kernel_args: inst.vnc inst.vncpassword=hunter2
hosts:
  - name: lo01
    macs: ["52:54:00:00:02:01"]
    ipv4: 127.0.0.1/8
    profile: web
    netboot: install
`

// TestBrowserLiveObjects is issue 16's UI acceptance test: in headless
// Chromium, the host form adds a host (showing the file's message for a
// bad field first) and edits it; the rendered-config page shows what the
// server would send, secrets hidden until the token asks; the profiles
// and distros page says who owns each; and a refused kickstart fetch
// shows its reason in the host's timeline.
func TestBrowserLiveObjects(t *testing.T) {
	exe := needTool(t, "chromium")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte(liveConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := server.Open(ctx, cfg, server.Options{DataDir: filepath.Join(dir, "data"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); in.Events.Run(ctx) }()
	token := api.NewToken()
	if err := in.Store.CreateAPIToken(ctx, store.APIToken{Name: "operator", Hash: api.HashToken(token), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := in.Install.SaveProfile(ctx, inventory.Profile{Name: "imported", Distro: "el9"}, true, install.ByCLI); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in.HTTPServer(nil).Handler())
	defer srv.Close()
	defer srv.CloseClientConnections()

	// lo01 is built; a late fetch of its old kickstart URL, from its own
	// address, is refused.
	lo, _ := in.Store.Host(ctx, "lo01")
	if _, err := in.Install.SetState(ctx, "lo01", inventory.StateLocal, install.ByCLI); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(srv.URL + "/ks/" + lo.Token); err != nil || resp.StatusCode != 404 {
		t.Fatalf("old kickstart URL: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	actx, acancel := chromedp.NewExecAllocator(ctx, chromiumFlags(t, exe)...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 120*time.Second)
	defer tcancel()
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
				pageErrors = append(pageErrors, "console.error")
			}
		}
	})
	step := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(bctx, actions...); err != nil {
			var body, loc string
			dctx, dcancel := context.WithTimeout(bctx, 5*time.Second)
			chromedp.Run(dctx, chromedp.Location(&loc), chromedp.Evaluate(`document.body.innerText`, &body))
			dcancel()
			t.Logf("at %s:\n%s", loc, body)
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %v (page errors: %v)", what, err, pageErrors)
		}
	}
	shots := map[string]*[]byte{}
	shot := func(name string) chromedp.Action {
		b := new([]byte)
		shots[name] = b
		return chromedp.FullScreenshot(b, 100)
	}

	// The host form: a bad address is refused with the file's message.
	var formErr, state, facts string
	step("host form",
		chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible(`#token-input`),
		chromedp.SendKeys(`#token-input`, token),
		chromedp.Click(`#token-save`),
		waitFor(`#hosts tr[data-host="lo01"]`),
		chromedp.Click(`#add-host`),
		afterNav(chromedp.Poll(`!!document.querySelector('#f-profile option[value="imported"]')`, nil)),
		chromedp.SendKeys(`#f-name`, "web9.example.com"),
		chromedp.SetValue(`#f-profile`, "vnc"),
		chromedp.SendKeys(`#f-macs`, "52:54:00:00:09:09"),
		chromedp.SendKeys(`#f-ssh-keys`, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"),
		chromedp.SendKeys(`#f-ipv4`, "192.0.2.300/24"),
		chromedp.Click(`#f-save`),
		waitFor(`#form-error`),
		text(`#form-error`, &formErr),
		shot("ui-host-form-error.png"),
	)
	if !strings.Contains(formErr, `host web9.example.com: ipv4: "192.0.2.300/24" is not an address/prefix`) {
		t.Errorf("form error = %q", formErr)
	}
	step("host form, fixed",
		chromedp.SetValue(`#f-ipv4`, "192.0.2.90/24"),
		chromedp.Click(`#f-save`),
		afterNav(waitFor(`#edit-link`)),
		text(`#host-state`, &state),
	)
	if state != "local" {
		t.Errorf("new host's state = %q", state)
	}
	if h, err := in.Store.Host(ctx, "web9.example.com"); err != nil || h.Origin != inventory.OriginLive || h.IPv4 != "192.0.2.90/24" || h.Profile != "vnc" || !strings.HasPrefix(h.Vars["ssh_keys"], "ssh-ed25519 ") {
		t.Fatalf("stored: %+v %v", h, err)
	}
	// Edit: the form comes filled in; a change is saved.
	step("edit",
		chromedp.Click(`#edit-link`),
		afterNav(chromedp.Poll(`(document.getElementById('f-ipv4') || {}).value === '192.0.2.90/24'`, nil)),
		chromedp.SetValue(`#f-ipv4`, "192.0.2.91/24"),
		chromedp.SetValue(`#f-timezone`, "Europe/Berlin"),
		chromedp.Click(`#f-save`),
		afterNav(chromedp.Poll(`(document.getElementById('facts') || {}).textContent?.includes('192.0.2.91/24')`, nil)),
		waitFor(`#timeline tr[data-kind="inventory"]`),
		text(`#facts`, &facts),
		shot("ui-host-live.png"),
	)
	if h, _ := in.Store.Host(ctx, "web9.example.com"); h.Timezone != "Europe/Berlin" || h.MACs[0] != "52:54:00:00:09:09" {
		t.Errorf("after edit: %+v", h)
	}

	// The rendered config: the server's preview, secrets hidden.
	var ipxe, shown string
	step("rendered config",
		chromedp.Click(`#render-link`),
		afterNav(chromedp.Poll(`document.getElementById('rendered')?.dataset.kind === 'ipxe'`, nil)),
		text(`#rendered`, &ipxe),
		chromedp.Click(`#r-secrets`),
		chromedp.Poll(`document.getElementById('rendered').dataset.secrets === 'shown'`, nil),
		text(`#rendered`, &shown),
		chromedp.Click(`#r-kinds button[data-kind="kickstart"]`),
		chromedp.Poll(`document.getElementById('rendered').dataset.kind === 'kickstart'`, nil),
		shot("ui-rendered.png"),
	)
	want, err := in.Install.Preview(ctx, install.PreviewRequest{Host: "web9.example.com", Kind: "ipxe", AsBuild: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ipxe, "#!ipxe") || !strings.Contains(ipxe, "inst.vncpassword=<redacted>") || strings.Contains(ipxe, "hunter2") {
		t.Errorf("rendered iPXE without secrets:\n%s", ipxe)
	}
	// The same bytes, the build token aside (the API shows none; the
	// preview of a host not yet built has "<token>" URL-escaped), and the
	// expiry of the token a build would mint, which moves with the clock.
	expiry := regexp.MustCompile(`token valid until \S+`)
	same := func(s string) string { return expiry.ReplaceAllString(s, "token valid until T") }
	if same(shown) != same(strings.ReplaceAll(string(want.Body), "/ks/%3Ctoken%3E", "/ks/<token>")) {
		t.Errorf("rendered iPXE with secrets differs from the server's preview:\n%s\n---\n%s", shown, want.Body)
	}
	var ks string
	step("kickstart", text(`#rendered`, &ks))
	if !strings.Contains(ks, "%post") || !strings.Contains(ks, "/cb/<token>/built") {
		t.Errorf("rendered kickstart:\n%s", ks)
	}

	// Profiles and distros, with their owners.
	step("profiles page",
		chromedp.Navigate(srv.URL+"/ui/profiles.html"),
		waitFor(`#profiles tr[data-name="imported"][data-origin="live"]`),
		waitFor(`#profiles tr[data-name="web"][data-origin="file"]`),
		waitFor(`#distros tr[data-name="el9"][data-origin="file"]`),
		shot("ui-profiles.png"),
	)
	var prof string
	step("profiles text", text(`#profiles`, &prof))
	if strings.Contains(prof, "hunter2") {
		t.Errorf("the profiles page shows a password: %s", prof)
	}

	// A refused fetch, with its reason.
	var reason, status string
	step("refused fetch",
		chromedp.Navigate(srv.URL+"/ui/host.html?name=lo01"),
		waitFor(`#file-owned`), // the file's host: no Edit, a note instead
		waitFor(`#timeline tr.failed-fetch[data-kind="http.kickstart"] .reason`),
		text(`#timeline tr.failed-fetch[data-kind="http.kickstart"] .reason`, &reason),
		text(`#timeline tr.failed-fetch[data-kind="http.kickstart"] td.status`, &status),
		shot("ui-refused.png"),
	)
	var editHidden bool
	step("no edit for the file's host", chromedp.Evaluate(`document.getElementById('edit-link').hidden`, &editHidden))
	if !editHidden {
		t.Error("the file's host offers Edit")
	}
	if reason != install.WhyUnknownToken || status != "404 refused" {
		t.Errorf("refused fetch shows status %q, reason %q", status, reason)
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
	for name, png := range shots {
		if len(*png) < 8 || string((*png)[1:4]) != "PNG" {
			t.Errorf("%s is not a PNG", name)
			continue
		}
		os.WriteFile(filepath.Join(out, name), *png, 0o644)
	}
}

// afterNav runs a wait that a click's page load may interrupt: an
// evaluation in the page being left fails, and is tried again in the new
// one.
func afterNav(wait chromedp.Action) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			err := wait.Do(ctx)
			if err == nil || ctx.Err() != nil || !(strings.Contains(err.Error(), "context") || strings.Contains(err.Error(), "Execution") || strings.Contains(err.Error(), "navigated")) {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
