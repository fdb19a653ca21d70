package api

import (
	_ "embed"
	"net/http"
)

// openapiDoc is written by hand; TestOpenAPIMatchesRoutes holds it to the
// routes table.
//
//go:embed openapi.json
var openapiDoc []byte

func (a *api) openapi(w http.ResponseWriter, _ *http.Request, _ string) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiDoc)
}
