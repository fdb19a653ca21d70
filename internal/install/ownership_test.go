package install

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyInstallWritesHostState holds the rule this package exists for:
// outside internal/install (and the store that implements them), no
// production code calls the store's host-state writers (SetHostState,
// SyncDeclared) or its writers of live objects (CreateHost, ...) or builds a store.Transition, which is how a token is
// minted into the store. Tests may seed stores directly.
func TestOnlyInstallWritesHostState(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	allowed := func(rel string) bool {
		return strings.HasPrefix(rel, "internal/install/") || strings.HasPrefix(rel, "internal/store/")
	}
	// The store's writers of hosts and of live objects.
	writers := map[string]bool{"SetHostState": true, "SyncDeclared": true, "CreateHost": true, "UpdateHost": true, "DeleteHost": true,
		"PutProfile": true, "PutDistro": true, "DeleteProfile": true, "DeleteDistro": true}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || rel == "build" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || allowed(rel) {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && writers[sel.Sel.Name] {
					t.Errorf("%s: calls %s: host state and live objects are written only by internal/install", fset.Position(n.Pos()), sel.Sel.Name)
				}
			case *ast.CompositeLit:
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Transition" {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "store" {
						t.Errorf("%s: builds a store.Transition: state changes and tokens belong to internal/install", fset.Position(n.Pos()))
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: the walk is broken", checked)
	}
}
