package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/store"
)

// Rendered is what the server would send a host, as `kickstand render`
// prints it: the same install.Preview the server's own answers come from.
type Rendered struct {
	Host    string   `json:"host"`
	Kind    string   `json:"kind"`
	Body    string   `json:"body"`
	Explain []string `json:"explain"`
	// Problems are the kickstart linter's findings.
	Problems []string `json:"problems,omitempty"`
	// Refused says the server would not serve this body, and why (a
	// kickstart that fails lint is answered 503).
	Refused string `json:"refused,omitempty"`
	// Secrets says whether password hashes and similar were left in:
	// only for a caller with a valid API token who asked (?secrets=true).
	// The build token is never shown.
	Secrets bool `json:"secrets"`
}

// render previews a host's iPXE script, GRUB or PXELINUX config, kernel
// command line or kickstart. Its query takes firmware (bios|uefi), family
// (4|6), as_build (true: as after `host build`) and secrets (true).
func (a *api) render(w http.ResponseWriter, r *http.Request, who string) {
	q := r.URL.Query()
	req := install.PreviewRequest{Host: r.PathValue("name"), Kind: r.PathValue("kind"), Firmware: q.Get("firmware"), AsBuild: q.Get("as_build") == "true"}
	if s := q.Get("family"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "family: want 4 or 6, not "+strconv.Quote(s))
			return
		}
		req.Family = n
	}
	secrets := who != "" && q.Get("secrets") == "true"
	if q.Get("secrets") == "true" && who == "" {
		unauthorized(w, "secrets=true needs a valid API token: without one the preview hides password hashes and other secrets")
		return
	}
	p, err := a.d.Lifecycle.Preview(r.Context(), req)
	out := Rendered{Host: req.Host, Kind: req.Kind, Explain: nonNil(p.Plan.Explain), Secrets: secrets}
	var lint *install.LintError
	switch {
	case errors.As(err, &lint):
		out.Refused = "the server would answer 503: " + lint.Error()
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		// Not installing, unknown kind or firmware: the operator's to fix.
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, pr := range p.Problems {
		out.Problems = append(out.Problems, pr.String())
	}
	out.Body = hideToken(string(p.Body))
	if !secrets {
		out.Body = redact(out.Body)
		for i := range out.Problems {
			out.Problems[i] = redact(out.Problems[i])
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// hideToken removes build tokens (kickstart and callback URLs), which no
// API answer shows.
func hideToken(s string) string {
	return secretPatterns[0].re.ReplaceAllString(s, secretPatterns[0].with)
}
