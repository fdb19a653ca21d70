package httpd

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The route list in docs/security.md says who may reach each route. These
// tests read the routes from the Go source (every ServeMux Handle and
// HandleFunc in this package, and the API's route table) so that a route
// cannot be added, removed or have its access changed without the list
// following.

const securityDoc = "../../docs/security.md"

// route is a method and a ServeMux pattern; access is the API's access
// level ("" outside the API).
type route struct {
	method, pattern, access string
}

func (r route) String() string { return r.method + " " + r.pattern }

// stringValues evaluates a pattern expression to every string it can take.
// It knows string literals, constants of the file, concatenation, and a
// range variable over a literal list of strings, which is how Handler
// registers one pattern per method. Anything else is an error, so that a
// new way of building patterns makes this test fail loudly rather than
// miss routes.
func stringValues(e ast.Expr, env map[string][]string) ([]string, error) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return nil, fmt.Errorf("not a string literal")
		}
		s, err := strconv.Unquote(x.Value)
		return []string{s}, err
	case *ast.ParenExpr:
		return stringValues(x.X, env)
	case *ast.Ident:
		if v, ok := env[x.Name]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("identifier %s has no known value", x.Name)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return nil, fmt.Errorf("operator %s", x.Op)
		}
		l, err := stringValues(x.X, env)
		if err != nil {
			return nil, err
		}
		r, err := stringValues(x.Y, env)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, a := range l {
			for _, b := range r {
				out = append(out, a+b)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T", e)
}

// literalStrings returns the strings of a []string{...} literal.
func literalStrings(e ast.Expr) ([]string, bool) {
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, false
	}
	var out []string
	for _, el := range cl.Elts {
		v, err := stringValues(el, nil)
		if err != nil || len(v) != 1 {
			return nil, false
		}
		out = append(out, v[0])
	}
	return out, true
}

// muxRoutes finds every Handle/HandleFunc call in the files and evaluates
// its pattern.
func muxRoutes(fset *token.FileSet, files []*ast.File) ([]route, error) {
	var out []route
	var errs []string
	for _, f := range files {
		env := map[string][]string{}
		// String constants of the file.
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, err := stringValues(vs.Values[i], env); err == nil {
							env[n.Name] = v
						}
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.RangeStmt:
				if id, ok := x.Value.(*ast.Ident); ok {
					if vals, ok := literalStrings(x.X); ok {
						env[id.Name] = vals
					}
				}
			case *ast.CallExpr:
				sel, ok := x.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") || len(x.Args) != 2 {
					return true
				}
				pats, err := stringValues(x.Args[0], env)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s: cannot evaluate the pattern (%v); teach routes_test.go", fset.Position(x.Pos()), err))
					return true
				}
				for _, p := range pats {
					method, pattern, ok := strings.Cut(p, " ")
					if !ok {
						// A method-less pattern matches every method.
						method, pattern = "ANY", p
					}
					out = append(out, route{method: method, pattern: strings.TrimSpace(pattern)})
				}
			}
			return true
		})
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, nil
}

// apiRoutes reads the API's route table: the composite literal returned
// by routes() in internal/api, {method, path, access, handler} per route.
func apiRoutes(fset *token.FileSet, files []*ast.File) ([]route, error) {
	var fn *ast.FuncDecl
	prefix := ""
	for _, f := range files {
		for _, d := range f.Decls {
			switch x := d.(type) {
			case *ast.FuncDecl:
				if x.Name.Name == "routes" && x.Recv == nil {
					fn = x
				}
			case *ast.GenDecl:
				for _, sp := range x.Specs {
					if vs, ok := sp.(*ast.ValueSpec); ok {
						for i, n := range vs.Names {
							if n.Name == "Prefix" && i < len(vs.Values) {
								if v, err := stringValues(vs.Values[i], nil); err == nil && len(v) == 1 {
									prefix = v[0]
								}
							}
						}
					}
				}
			}
		}
	}
	if fn == nil || prefix == "" {
		return nil, fmt.Errorf("internal/api: no routes() function or Prefix constant")
	}
	var out []route
	var err error
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		ret, ok := n.(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			return true
		}
		list, ok := ret.Results[0].(*ast.CompositeLit)
		if !ok {
			err = fmt.Errorf("%s: routes() does not return a literal", fset.Position(ret.Pos()))
			return false
		}
		for _, el := range list.Elts {
			cl, ok := el.(*ast.CompositeLit)
			if !ok || len(cl.Elts) < 3 {
				err = fmt.Errorf("%s: route entry is not {method, path, access, handler}", fset.Position(el.Pos()))
				return false
			}
			m, e1 := stringValues(cl.Elts[0], nil)
			p, e2 := stringValues(cl.Elts[1], nil)
			acc, ok := cl.Elts[2].(*ast.Ident)
			if e1 != nil || e2 != nil || !ok || len(m) != 1 || len(p) != 1 {
				err = fmt.Errorf("%s: cannot read the route entry", fset.Position(el.Pos()))
				return false
			}
			out = append(out, route{method: m[0], pattern: prefix + p[0], access: acc.Name})
		}
		return false
	})
	return out, err
}

func parseDir(t *testing.T, dir string) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return fset, files
}

var (
	docMethods = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|ANY)(, (GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS))*$`)
	docPattern = regexp.MustCompile("^`([^`]+)`$")
)

// docRoutes reads every table row of the security document whose first
// cell is a method list and whose second is a `pattern`. For API rows
// (patterns under /api/v1/ other than the mount itself) the third cell is
// the access level.
func docRoutes(doc string) []route {
	var out []route
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !docMethods.MatchString(cells[0]) {
			continue
		}
		m := docPattern.FindStringSubmatch(cells[1])
		if m == nil {
			continue
		}
		access := ""
		if strings.HasPrefix(m[1], "/api/v1/") && m[1] != "/api/v1/" {
			access = cells[2]
		}
		for _, meth := range strings.Split(cells[0], ", ") {
			out = append(out, route{method: meth, pattern: m[1], access: access})
		}
	}
	return out
}

// codeRoutes is every route the code registers: this package's mux, and
// the API's table under its mount.
func codeRoutes(t *testing.T) []route {
	t.Helper()
	fset, files := parseDir(t, ".")
	mux, err := muxRoutes(fset, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(mux) == 0 {
		t.Fatal("found no Handle/HandleFunc calls in internal/httpd: the extraction is broken")
	}
	afset, afiles := parseDir(t, "../api")
	api, err := apiRoutes(afset, afiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(api) == 0 {
		t.Fatal("found no routes in internal/api routes(): the extraction is broken")
	}
	return append(mux, api...)
}

func TestRoutesDocumented(t *testing.T) {
	b, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := docRoutes(string(b))
	code := codeRoutes(t)

	documented := map[string]route{}
	for _, r := range doc {
		documented[r.String()] = r
	}
	registered := map[string]route{}
	for _, r := range code {
		registered[r.String()] = r
	}
	var missing, stale, wrongAccess []string
	for k, r := range registered {
		d, ok := documented[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case r.access != "" && d.access != r.access:
			wrongAccess = append(wrongAccess, fmt.Sprintf("%s: code says %s, docs/security.md says %q", k, r.access, d.access))
		}
	}
	for k := range documented {
		if _, ok := registered[k]; !ok {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	sort.Strings(wrongAccess)
	if len(missing) > 0 {
		t.Errorf("routes registered but not in docs/security.md (add a row saying who may reach each and why):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(stale) > 0 {
		t.Errorf("routes in docs/security.md that the code no longer registers:\n  %s", strings.Join(stale, "\n  "))
	}
	if len(wrongAccess) > 0 {
		t.Errorf("API access levels differ:\n  %s", strings.Join(wrongAccess, "\n  "))
	}
	t.Logf("%d routes registered, %d documented", len(registered), len(documented))
}

// TestRouteExtraction checks the extractor itself on the shapes it must
// understand, and that it refuses what it does not.
func TestRouteExtraction(t *testing.T) {
	src := `package x
const base = "/v2"
func h() {
	mux.HandleFunc("GET /a/{id}", nil)
	mux.Handle("POST " + base + "/b", nil)
	for _, m := range []string{"GET", "DELETE"} {
		mux.Handle(m+" /c/", nil)
	}
	mux.Handle("/any", nil)
	other.Handle(x, y, z)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := muxRoutes(fset, []*ast.File{f})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, r := range got {
		s = append(s, r.String())
	}
	want := "GET /a/{id}|POST /v2/b|GET /c/|DELETE /c/|ANY /any"
	if strings.Join(s, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(s, "|"), want)
	}

	bad := `package x
func h(p string) { mux.Handle(p, nil) }
`
	f, _ = parser.ParseFile(fset, "bad.go", bad, 0)
	if _, err := muxRoutes(fset, []*ast.File{f}); err == nil {
		t.Error("a pattern from a parameter was accepted; it must be reported")
	}

	doc := "| method | route | who | why |\n|---|---|---|---|\n| GET, POST | `/x/{t}` | anyone | because |\n| GET | `/api/v1/y` | read | r |\n| not a route | `/z` | a | b |\n"
	var ds []string
	for _, r := range docRoutes(doc) {
		ds = append(ds, r.String()+"="+r.access)
	}
	if got, want := strings.Join(ds, "|"), "GET /x/{t}=|POST /x/{t}=|GET /api/v1/y=read"; got != want {
		t.Errorf("doc rows: got %q, want %q", got, want)
	}
}

// TestSecurityDocClaimsHaveTests: every test docs/security.md names as the
// proof of a claim exists, as a test function or a subtest, so a claim
// cannot outlive its test.
func TestSecurityDocClaimsHaveTests(t *testing.T) {
	b, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("`(Test[A-Z][A-Za-z0-9_]*|[A-Z][A-Za-z0-9]+ResumesState)`").FindAllStringSubmatch(string(b), -1)
	if len(named) < 10 {
		t.Fatalf("found %d test names in %s: the extraction is broken", len(named), securityDoc)
	}
	var sources strings.Builder
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && (strings.HasSuffix(p, "_test.go") || strings.Contains(p, "storetest")) {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sources.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	src := sources.String()
	for _, m := range named {
		name := m[1]
		if !strings.Contains(src, "func "+name+"(") && !strings.Contains(src, `t.Run("`+name+`"`) {
			t.Errorf("docs/security.md cites %s, which no test defines", name)
		}
	}
}
