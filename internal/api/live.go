package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// maxSpecBody bounds a live object's JSON: a host with every field and a
// few variables is a few KiB.
const maxSpecBody = 64 << 10

// decodeSpec reads a JSON object onto v: fields present replace v's, the
// others stay (PATCH), and an unknown field is refused by name. In "vars",
// as in a JSON merge patch (RFC 7386), null removes a variable.
func decodeSpec(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSpecBody+1))
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if len(b) > maxSpecBody {
		return fmt.Errorf("body: more than %d bytes", maxSpecBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("body: one JSON object, please")
	}
	var nulls struct {
		Vars map[string]*string `json:"vars"`
	}
	if json.Unmarshal(b, &nulls) == nil {
		if vars := varsOf(v); vars != nil {
			for k, val := range nulls.Vars {
				if val == nil {
					delete(*vars, k)
				}
			}
		}
	}
	return nil
}

// varsOf is the template variables of a host or profile being decoded.
func varsOf(v any) *map[string]string {
	switch x := v.(type) {
	case *inventory.Host:
		return &x.Vars
	case *inventory.Profile:
		return &x.Vars
	}
	return nil
}

// liveFail answers a refused live change with what the operator needs to
// know: 400 for a spec that fails the file's checks, 409 for an object the
// file owns, one that exists or one in use, 404 for a missing one.
func (a *api) liveFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var inv *install.InvalidError
	switch {
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, inv.Error())
	case errors.Is(err, store.ErrFileOwned), errors.Is(err, store.ErrExists), errors.Is(err, store.ErrInUse):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		a.fail(w, r, what, err)
	}
}

func (a *api) addHost(w http.ResponseWriter, r *http.Request, who string) {
	var h inventory.Host
	if err := decodeSpec(r, &h); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, err := a.d.Lifecycle.AddHost(r.Context(), h, install.ByAPI(who))
	if err != nil {
		a.liveFail(w, r, "adding host "+h.Name, err)
		return
	}
	a.changed.notify()
	a.writeHostCode(w, r, http.StatusCreated, rec)
}

func (a *api) editHost(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	old, err := a.d.Store.Host(r.Context(), name)
	if err != nil {
		a.liveFail(w, r, "host "+name, err)
		return
	}
	h := old.Host
	if err := decodeSpec(r, &h); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if h.Name != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name: a host is not renamed (%q in the body, %q in the path): add the new one and remove the old", h.Name, name))
		return
	}
	rec, err := a.d.Lifecycle.EditHost(r.Context(), h, install.ByAPI(who))
	if err != nil {
		a.liveFail(w, r, "editing host "+name, err)
		return
	}
	a.changed.notify()
	a.writeHost(w, r, rec)
}

// Removed is the answer to a DELETE.
type Removed struct {
	Removed string `json:"removed"` // "host web1"
}

func (a *api) removeHost(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	if err := a.d.Lifecycle.RemoveHost(r.Context(), name, install.ByAPI(who)); err != nil {
		a.liveFail(w, r, "removing host "+name, err)
		return
	}
	a.changed.notify()
	writeJSON(w, http.StatusOK, Removed{"host " + name})
}

// specRoutes are POST, PATCH and DELETE of a profile or distro.
type specRoutes[T any] struct {
	kind   string
	get    func(a *api, r *http.Request, name string) (*T, error)
	name   func(*T) string
	save   func(a *api, r *http.Request, v T, create bool, by install.Cause) error
	remove func(a *api, r *http.Request, name string, by install.Cause) error
	// hide redacts what the listing redacts, so an answer shows no more.
	hide func(*T)
}

func (s specRoutes[T]) add(a *api, w http.ResponseWriter, r *http.Request, who string) {
	var v T
	if err := decodeSpec(r, &v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.saveAndShow(a, w, r, v, true, who)
}

func (s specRoutes[T]) edit(a *api, w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	v, err := s.get(a, r, name)
	if err != nil {
		a.liveFail(w, r, s.kind+" "+name, err)
		return
	}
	if err := decodeSpec(r, v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.name(v) != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name: a %s is not renamed (%q in the body, %q in the path)", s.kind, s.name(v), name))
		return
	}
	s.saveAndShow(a, w, r, *v, false, who)
}

func (s specRoutes[T]) saveAndShow(a *api, w http.ResponseWriter, r *http.Request, v T, create bool, who string) {
	if err := s.save(a, r, v, create, install.ByAPI(who)); err != nil {
		a.liveFail(w, r, "saving "+s.kind+" "+s.name(&v), err)
		return
	}
	a.changed.notify()
	saved, err := s.get(a, r, s.name(&v))
	if err != nil {
		a.fail(w, r, s.kind+" "+s.name(&v), err)
		return
	}
	s.hide(saved)
	code := http.StatusOK
	if create {
		code = http.StatusCreated
	}
	writeJSON(w, code, saved)
}

func (s specRoutes[T]) del(a *api, w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	if err := s.remove(a, r, name, install.ByAPI(who)); err != nil {
		a.liveFail(w, r, "removing "+s.kind+" "+name, err)
		return
	}
	a.changed.notify()
	writeJSON(w, http.StatusOK, Removed{s.kind + " " + name})
}

var profileRoutes = specRoutes[inventory.Profile]{
	kind: "profile",
	get: func(a *api, r *http.Request, n string) (*inventory.Profile, error) {
		return a.d.Store.Profile(r.Context(), n)
	},
	name: func(p *inventory.Profile) string { return p.Name },
	save: func(a *api, r *http.Request, p inventory.Profile, create bool, by install.Cause) error {
		return a.d.Lifecycle.SaveProfile(r.Context(), p, create, by)
	},
	remove: func(a *api, r *http.Request, n string, by install.Cause) error {
		return a.d.Lifecycle.RemoveProfile(r.Context(), n, by)
	},
	hide: func(p *inventory.Profile) {
		p.KernelArgs = redact(p.KernelArgs)
		// Template variables hold password hashes: names only.
		if len(p.Vars) > 0 {
			vars := make(map[string]string, len(p.Vars))
			for k := range p.Vars {
				vars[k] = "<hidden>"
			}
			p.Vars = vars
		}
	},
}

var distroRoutes = specRoutes[inventory.Distro]{
	kind: "distro",
	get: func(a *api, r *http.Request, n string) (*inventory.Distro, error) {
		return a.d.Store.Distro(r.Context(), n)
	},
	name: func(d *inventory.Distro) string { return d.Name },
	save: func(a *api, r *http.Request, d inventory.Distro, create bool, by install.Cause) error {
		return a.d.Lifecycle.SaveDistro(r.Context(), d, create, by)
	},
	remove: func(a *api, r *http.Request, n string, by install.Cause) error {
		return a.d.Lifecycle.RemoveDistro(r.Context(), n, by)
	},
	hide: func(d *inventory.Distro) { d.Tree, d.Stage2, d.Repo = redact(d.Tree), redact(d.Stage2), redact(d.Repo) },
}

func (a *api) addProfile(w http.ResponseWriter, r *http.Request, who string) {
	profileRoutes.add(a, w, r, who)
}
func (a *api) editProfile(w http.ResponseWriter, r *http.Request, who string) {
	profileRoutes.edit(a, w, r, who)
}
func (a *api) removeProfile(w http.ResponseWriter, r *http.Request, who string) {
	profileRoutes.del(a, w, r, who)
}
func (a *api) addDistro(w http.ResponseWriter, r *http.Request, who string) {
	distroRoutes.add(a, w, r, who)
}
func (a *api) editDistro(w http.ResponseWriter, r *http.Request, who string) {
	distroRoutes.edit(a, w, r, who)
}
func (a *api) removeDistro(w http.ResponseWriter, r *http.Request, who string) {
	distroRoutes.del(a, w, r, who)
}
