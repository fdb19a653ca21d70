package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
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
	// The install network and time settings, as declared.
	Nameservers []string `json:"nameservers,omitempty"`
	NTP         []string `json:"ntp,omitempty"`
	Timezone    string   `json:"timezone,omitempty"`
	Interface   string   `json:"interface,omitempty"`
	// Vars names the host's template variables; their values (password
	// hashes, keys) are never shown.
	Vars []string `json:"vars,omitempty"`
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
	return ViewHost(rec, append(evs, pending...), a.d.Now(), full), nil
}

// ViewHost is a host as the API and the CLI's -o json|yaml show it, with
// its diagnosis from its events at now: a Summary, or with full the whole
// diagnosis. One function, so the two cannot show different fields or
// leak what the other hides.
func ViewHost(rec *inventory.HostRecord, evs []store.Event, now time.Time, full bool) Host {
	d := RedactDiagnosis(diagnose.ForHost(evs, now, rec))
	h := Host{
		Name: rec.Name, State: rec.State, Profile: rec.Profile, Origin: rec.Origin, Netboot: rec.Netboot,
		MACs: rec.MACs, UUID: rec.UUID, IPv4: rec.IPv4, Gateway4: rec.Gateway4, IPv6: rec.IPv6, Gateway6: rec.Gateway6,
		Platform: rec.Platform, UpdatedAt: rec.UpdatedAt,
		Nameservers: rec.Nameservers, NTP: rec.NTP, Timezone: rec.Timezone, Interface: rec.Interface,
	}
	for k := range rec.Vars {
		h.Vars = append(h.Vars, k)
	}
	sort.Strings(h.Vars)
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
	return h
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
	a.writeHostCode(w, r, http.StatusOK, rec, pending...)
}

func (a *api) writeHostCode(w http.ResponseWriter, r *http.Request, code int, rec *inventory.HostRecord, pending ...store.Event) {
	h, err := a.view(r, rec, true, pending...)
	if err != nil {
		a.fail(w, r, "diagnosing host "+rec.Name, err)
		return
	}
	writeJSON(w, code, h)
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

// Profile is a profile with who owns it: the file or live edits.
type Profile struct {
	inventory.Profile
	Origin string `json:"origin"`
}

// Distro is a distro with who owns it.
type Distro struct {
	inventory.Distro
	Origin string `json:"origin"`
}

func (a *api) profiles(w http.ResponseWriter, r *http.Request, _ string) {
	ps, err := a.d.Store.Profiles(r.Context())
	if err != nil {
		a.fail(w, r, "listing profiles", err)
		return
	}
	origins, _, err := a.d.Store.Origins(r.Context())
	if err != nil {
		a.fail(w, r, "listing profiles", err)
		return
	}
	out := make([]Profile, len(ps))
	for i, p := range ps {
		profileRoutes.hide(&p)
		out[i] = Profile{p, origins[p.Name]}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) distros(w http.ResponseWriter, r *http.Request, _ string) {
	ds, err := a.d.Store.Distros(r.Context())
	if err != nil {
		a.fail(w, r, "listing distros", err)
		return
	}
	_, origins, err := a.d.Store.Origins(r.Context())
	if err != nil {
		a.fail(w, r, "listing distros", err)
		return
	}
	out := make([]Distro, len(ds))
	for i, d := range ds {
		distroRoutes.hide(&d)
		out[i] = Distro{d, origins[d.Name]}
	}
	writeJSON(w, http.StatusOK, out)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
