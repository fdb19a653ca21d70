package boot

import (
	"os/exec"
	"strings"
	"testing"
)

// The boot decision reads the few store methods it declares; the SQL
// drivers live in their own package, so neither this package nor its
// tests link pgx or SQLite (they made `go test ./internal/boot` take a
// minute to build cold).
func TestNoSQLDrivers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -test: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, driver := range []string{"github.com/jackc/pgx", "modernc.org/sqlite"} {
			if strings.HasPrefix(dep, driver) {
				t.Errorf("internal/boot links %s", dep)
			}
		}
	}
	if !strings.Contains(string(out), "github.com/kickstand/kickstand/internal/boot") {
		t.Errorf("go list did not list the package itself:\n%s", out)
	}
}
