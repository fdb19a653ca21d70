package api

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes holds the hand-written document to the router:
// every route is documented with the right security, every documented
// operation is routed, and every reference resolves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi version %q", v)
	}
	if s := doc["servers"].([]any)[0].(map[string]any)["url"]; s != Prefix {
		t.Errorf("server url %v, want %s", s, Prefix)
	}
	paths, _ := doc["paths"].(map[string]any)

	routed := map[string]route{}
	for _, rt := range routes() {
		routed[strings.ToLower(rt.method)+" "+rt.path] = rt
	}
	documented := map[string]bool{}
	ids := map[string]bool{}
	params := regexp.MustCompile(`\{([^}]+)\}`)
	for p, item := range paths {
		ops := item.(map[string]any)
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			key := method + " " + p
			documented[key] = true
			rt, ok := routed[key]
			if !ok {
				t.Errorf("documented but not routed: %s", key)
				continue
			}
			o := op.(map[string]any)
			id, _ := o["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s: operationId %q missing or repeated", key, id)
			}
			ids[id] = true
			sec, overrides := o["security"].([]any)
			if (rt.access == public) != (overrides && len(sec) == 0) {
				t.Errorf("%s: security in the document does not match the route's access %d", key, rt.access)
			}
			resps, _ := o["responses"].(map[string]any)
			if _, ok := resps["200"]; !ok && resps["201"] == nil {
				t.Errorf("%s: no 200 or 201 response", key)
			}
			if o["requestBody"] != nil && resps["400"] == nil {
				t.Errorf("%s: a change with a body documents no 400", key)
			}
			if _, ok := resps["401"]; !ok && rt.access != public {
				t.Errorf("%s: needs a token but documents no 401", key)
			}
			// Path parameters are declared, at the path or the operation.
			var declared []string
			for _, l := range []any{ops["parameters"], o["parameters"]} {
				for _, prm := range asList(l) {
					prm = resolve(t, doc, prm)
					if m, _ := prm.(map[string]any); m["in"] == "path" {
						declared = append(declared, m["name"].(string))
					}
				}
			}
			for _, m := range params.FindAllStringSubmatch(p, -1) {
				if !slices.Contains(declared, m[1]) {
					t.Errorf("%s: path parameter %s not declared", key, m[1])
				}
			}
		}
	}
	for key := range routed {
		if !documented[key] {
			t.Errorf("routed but not documented: %s", key)
		}
	}
	checkRefs(t, doc, doc)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// resolve follows a local $ref.
func resolve(t *testing.T, doc map[string]any, v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return v
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		next, ok := cur.(map[string]any)[part]
		if !ok {
			t.Errorf("unresolved $ref %s", ref)
			return nil
		}
		cur = next
	}
	return cur
}

func checkRefs(t *testing.T, doc map[string]any, v any) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			if !strings.HasPrefix(ref, "#/components/") {
				t.Errorf("non-local $ref %s", ref)
			}
			resolve(t, doc, x)
		}
		for _, e := range x {
			checkRefs(t, doc, e)
		}
	case []any:
		for _, e := range x {
			checkRefs(t, doc, e)
		}
	}
}

// TestOpenAPIValidates checks the document with a real validator
// (openapi-spec-validator, on the project's machines through pip).
func TestOpenAPIValidates(t *testing.T) {
	tool := needTool(t, "openapi-spec-validator")
	p := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(p, openapiDoc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("openapi-spec-validator: %v\n%s", err, out)
	}
}

// needTool finds an external program, or skips the test without it unless
// KICKSTAND_REQUIRE_PEERS=1 (make test), where a missing peer is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (KICKSTAND_REQUIRE_PEERS=1) but missing: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}
