package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kickstand/kickstand/internal/diagnose"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Host is a host as the API shows it. It is spelled out field by field
// rather than embedding the store's record, so that nothing secret can
// appear by accident: not the build token, and not the template
// variables, which may hold password hashes.
type Host struct {
	Name     string   `json:"name"`
	State    string   `json:"state"`
	Profile  string   `json:"profile"`
	Origin   string   `json:"origin"`
	Netboot  string   `json:"netboot,omitempty"` // the state the file declares
	MACs     []string `json:"macs,omitempty"`
	UUID     string   `json:"uuid,omitempty"`
	IPv4     string   `json:"ipv4,omitempty"`
	Gateway4 string   `json:"gateway4,omitempty"`
	IPv6     string   `json:"ipv6,omitempty"`
	Gateway6 string   `json:"gateway6,omitempty"`
	Platform string   `json:"platform,omitempty"`
	// TokenExpires is when the build token (never shown) stops working.
	TokenExpires time.Time `json:"token_expires,omitzero"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastSeen     time.Time `json:"last_seen,omitzero"` // the host's latest event
	// Diagnosis is a Summary in listings and a full diagnose.Diagnosis for
	// one host.
	Diagnosis any `json:"diagnosis"`
}

// RedactDiagnosis hides secrets in what a diagnosis quotes of installer
// text (its cause, hint and log tail), for every place that shows one.
func RedactDiagnosis(d diagnose.Diagnosis) diagnose.Diagnosis {
	d.Cause, d.Hint = redact(d.Cause), redact(d.Hint)
	tail := make([]string, len(d.LogTail))
	for i, l := range d.LogTail {
		tail[i] = redact(l)
	}
	if d.LogTail != nil {
		d.LogTail = tail
	}
	return d
}

// Summary is the part of a diagnosis the hosts table shows.
type Summary struct {
	Stage    string `json:"stage"`
	Progress int    `json:"progress"`
	Stalled  bool   `json:"stalled"`
	Cause    string `json:"cause,omitempty"`
}

// view diagnoses a host from its stored events and pending ones: those
// just handed to the recorder, which it may not have written yet.
func (a *api) view(r *http.Request, rec *inventory.HostRecord, full bool, pending ...store.Event) (Host, error) {
	evs, err := a.d.Store.Events(r.Context(), rec.Name, 0, 0)
	if err != nil {
		return Host{}, err
	}
	evs = append(evs, pending...)
	d := RedactDiagnosis(diagnose.ForHost(evs, a.d.Now(), rec))
	h := Host{
		Name: rec.Name, State: rec.State, Profile: rec.Profile, Origin: rec.Origin, Netboot: rec.Netboot,
		MACs: rec.MACs, UUID: rec.UUID, IPv4: rec.IPv4, Gateway4: rec.Gateway4, IPv6: rec.IPv6, Gateway6: rec.Gateway6,
		Platform: rec.Platform, UpdatedAt: rec.UpdatedAt,
	}
	if rec.State == inventory.StateInstall {
		h.TokenExpires = rec.TokenExpires
	}
	if len(evs) > 0 {
		h.LastSeen = evs[len(evs)-1].At
	}
	if full {
		h.Diagnosis = d
	} else {
		h.Diagnosis = Summary{Stage: d.Stage, Progress: d.Progress, Stalled: d.Stalled, Cause: d.Cause}
	}
	return h, nil
}

func (a *api) hosts(w http.ResponseWriter, r *http.Request, _ string) {
	recs, err := a.d.Store.Hosts(r.Context())
	if err != nil {
		a.fail(w, r, "listing hosts", err)
		return
	}
	out := make([]Host, 0, len(recs))
	for i := range recs {
		h, err := a.view(r, &recs[i], false)
		if err != nil {
			a.fail(w, r, "diagnosing host "+recs[i].Name, err)
			return
		}
		out = append(out, h)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) host(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("name")
	rec, err := a.d.Store.Host(r.Context(), name)
	if err != nil {
		a.fail(w, r, "host "+name, err)
		return
	}
	a.writeHost(w, r, rec)
}

func (a *api) writeHost(w http.ResponseWriter, r *http.Request, rec *inventory.HostRecord, pending ...store.Event) {
	h, err := a.view(r, rec, true, pending...)
	if err != nil {
		a.fail(w, r, "diagnosing host "+rec.Name, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (a *api) build(w http.ResponseWriter, r *http.Request, who string) {
	a.changeState(w, r, who, inventory.StateInstall)
}

// StateChange is the body of POST /hosts/{name}/state.
type StateChange struct {
	State string `json:"state"`
}

func (a *api) setState(w http.ResponseWriter, r *http.Request, who string) {
	var sc StateChange
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body: want {\"state\": \"install|local|menu\"}: %v", err))
		return
	}
	switch sc.State {
	case inventory.StateInstall, inventory.StateLocal, inventory.StateMenu:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown state %q: want install, local or menu", sc.State))
		return
	}
	a.changeState(w, r, who, sc.State)
}

// changeState moves a host through the lifecycle, which records it on the
// host's timeline with the API token's name. Going to install always makes
// a fresh build token (and starts a new install in the diagnosis), even
// from install: that is how an operator restarts a stuck install.
func (a *api) changeState(w http.ResponseWriter, r *http.Request, who, to string) {
	name := r.PathValue("name")
	rec, err := a.d.Lifecycle.SetState(r.Context(), name, to, install.ByAPI(who))
	if err != nil {
		a.fail(w, r, "setting the state of "+name, err)
		return
	}
	a.changed.notify()
	a.writeHost(w, r, rec)
}

func (a *api) profiles(w http.ResponseWriter, r *http.Request, _ string) {
	ps, err := a.d.Store.Profiles(r.Context())
	if err != nil {
		a.fail(w, r, "listing profiles", err)
		return
	}
	for i := range ps {
		ps[i].KernelArgs = redact(ps[i].KernelArgs)
		// Template variables hold password hashes: names only.
		for k := range ps[i].Vars {
			ps[i].Vars[k] = "<hidden>"
		}
	}
	writeJSON(w, http.StatusOK, nonNil(ps))
}

func (a *api) distros(w http.ResponseWriter, r *http.Request, _ string) {
	ds, err := a.d.Store.Distros(r.Context())
	if err != nil {
		a.fail(w, r, "listing distros", err)
		return
	}
	for i := range ds {
		ds[i].Tree, ds[i].Stage2, ds[i].Repo = redact(ds[i].Tree), redact(ds[i].Stage2), redact(ds[i].Repo)
	}
	writeJSON(w, http.StatusOK, nonNil(ds))
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
