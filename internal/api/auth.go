package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// tokenPrefix marks kickstand API tokens, so that a leaked one is easy to
// recognise (and to grep for) in logs, shells' histories and repositories.
const tokenPrefix = "ksapi_"

// NewToken makes an API token: the prefix and 130 random bits. Only its
// HashToken is stored; the caller shows the token once.
func NewToken() string { return tokenPrefix + rand.Text() }

// HashToken is what the store keeps of a token.
func HashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckTokenName refuses names that would be awkward on a command line or
// in the audit data of state events.
func CheckTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return fmt.Errorf("token name %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authorize checks the caller may use a route and returns the name of the
// token it presented. On refusal it has answered.
func (a *api) authorize(w http.ResponseWriter, r *http.Request, need access) (string, bool) {
	if need == public {
		return "", true
	}
	tok, has := bearer(r)
	open := need == read && a.d.OpenReads != nil && a.d.OpenReads()
	if !has {
		if open {
			return "", true
		}
		unauthorized(w, "this API needs a bearer token: create one with `kickstand token create` and send \"Authorization: Bearer <token>\"")
		return "", false
	}
	name, err := a.tokenName(r, tok)
	if err != nil {
		a.fail(w, r, "checking the API token", err)
		return "", false
	}
	if name == "" {
		unauthorized(w, "invalid or revoked API token")
		return "", false
	}
	return name, true
}

// tokenName finds the stored token matching tok, comparing every stored
// hash in constant time and never stopping early, so the answer's timing
// says nothing about how close a guess came or which token matched.
func (a *api) tokenName(r *http.Request, tok string) (string, error) {
	toks, err := a.d.Store.APITokens(r.Context())
	if err != nil {
		return "", err
	}
	h := HashToken(tok)
	name := ""
	for _, t := range toks {
		if subtle.ConstantTimeCompare(h, t.Hash) == 1 {
			name = t.Name
		}
	}
	return name, nil
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="kickstand"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// whoami lets the UI tell an operator whether the token they pasted works,
// even when reads are open and every page would load without it.
func (a *api) whoami(w http.ResponseWriter, r *http.Request, _ string) {
	out := struct {
		Authenticated bool   `json:"authenticated"`
		Token         string `json:"token,omitempty"` // the token's name
		OpenReads     bool   `json:"open_reads"`
	}{OpenReads: a.d.OpenReads != nil && a.d.OpenReads()}
	if tok, ok := bearer(r); ok {
		name, err := a.tokenName(r, tok)
		if err != nil {
			a.fail(w, r, "checking the API token", err)
			return
		}
		out.Authenticated, out.Token = name != "", name
	}
	writeJSON(w, http.StatusOK, out)
}
