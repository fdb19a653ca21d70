package api

import (
	"errors"
	"net/http"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// discovered lists the machines that reported themselves from iPXE
// (menu.unknown: discover), waiting or assigned.
func (a *api) discovered(w http.ResponseWriter, r *http.Request, _ string) {
	ds, err := a.d.Store.DiscoveredMachines(r.Context())
	if err != nil {
		a.fail(w, r, "listing discovered machines", err)
		return
	}
	if ds == nil {
		ds = []store.Discovered{}
	}
	writeJSON(w, http.StatusOK, ds)
}

// assignDiscovered makes a discovered machine a host in install. The body
// is a host spec (name and profile at least); the MAC and UUID come from
// the machine's report.
func (a *api) assignDiscovered(w http.ResponseWriter, r *http.Request, who string) {
	var h inventory.Host
	if err := decodeSpec(r, &h); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, err := a.d.Lifecycle.AssignDiscovered(r.Context(), r.PathValue("mac"), h, install.ByAPI(who))
	if err != nil {
		a.liveFail(w, r, "assigning discovered machine "+r.PathValue("mac"), err)
		return
	}
	a.changed.notify()
	a.writeHostCode(w, r, http.StatusCreated, rec)
}

// reinstall is `kickstand host reinstall` over the API. A BMC that fails
// is a 502 saying what failed (never a credential); the host stays in
// install, as the timeline says.
func (a *api) reinstall(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	rec, err := a.d.Lifecycle.Reinstall(r.Context(), name, install.ByAPI(who))
	switch {
	case errors.Is(err, install.ErrNoBMC):
		writeError(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	a.changed.notify()
	a.writeHost(w, r, rec)
}
