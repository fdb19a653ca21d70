package webui

import (
	"io/fs"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{
		"/ui/":            "text/html",
		"/ui/host.html":   "text/html",
		"/ui/app.js":      "text/javascript",
		"/ui/hosts.js":    "text/javascript",
		"/ui/host.js":     "text/javascript",
		"/ui/style.css":   "text/css",
		"/ui/favicon.svg": "image/svg+xml",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) {
			t.Errorf("GET %s = %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/ui/nope.js", nil))
	if w.Code != 404 {
		t.Errorf("missing file = %d", w.Code)
	}
}

// The pages must work under the CSP: no inline script, style or event
// handler, and no markup built from strings in the scripts.
func TestPagesFollowCSP(t *testing.T) {
	inline := regexp.MustCompile(`(?i)\sstyle=|\son[a-z]+=|<style`)
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	unsafeDOM := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".html"):
			if m := inline.Find(b); m != nil {
				t.Errorf("%s: inline style or handler %q", p, m)
			}
			for _, m := range scripts.FindAllSubmatch(b, -1) {
				if !strings.Contains(string(m[1]), "src=") || strings.TrimSpace(string(m[2])) != "" {
					t.Errorf("%s: inline script %q", p, m[0])
				}
			}
		case strings.HasSuffix(p, ".js"):
			if m := unsafeDOM.Find(b); m != nil {
				t.Errorf("%s: %q writes markup from strings", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
