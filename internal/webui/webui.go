// Package webui is kickstand's operator console: a hosts table with each
// install's progress and diagnosis, and a page per host with its live
// timeline and the build and mark-local actions. It is static HTML, CSS
// and plain JavaScript embedded in the binary (no build step, no
// framework), and it talks only to the REST API.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the UI; mount it at /ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Installer log lines and syslog text are shown here; the
		// page script writes them as text only, and this policy makes
		// sure no injected markup could run script or load anything.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate, so an upgraded kickstand serves its own UI at once.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
