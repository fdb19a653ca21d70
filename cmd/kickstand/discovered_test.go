package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// discovered list shows what machines reported; both `discovered assign`
// and `host add --from-discovered` make one a live host in install, with
// the reported MAC and UUID, and neither works twice.
func TestDiscoveredCLI(t *testing.T) {
	cfg := distroConfig(t, 8080)
	c := "--config=" + cfg
	if _, err := run(t, "host", "list", c); err != nil { // creates the store
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), filepath.Join(filepath.Dir(cfg), "data"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, d := range []store.Discovered{
		{MAC: "52:54:00:17:00:01", Proof: "lease", Addr: "192.0.2.101", UUID: "8a9b0c1d-2e3f-4051-8697-a8b9cadbec01", Manufacturer: "Rackmaker", Product: "RM-1", Serial: "S-1", Asset: "A-1", Platform: "efi", BuildArch: "x86_64", LastSeen: now},
		{MAC: "52:54:00:17:00:02", Proof: "claimed", Addr: "192.0.2.102", Serial: "S-2", LastSeen: now},
	} {
		if _, err := st.ReportDiscovered(context.Background(), d, store.DiscoveryLimits{Max: 10}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out, err := run(t, "discovered", "list", c)
	if err != nil || !strings.Contains(out, "52:54:00:17:00:01") || !strings.Contains(out, "Rackmaker") || !strings.Contains(out, "(waiting)") {
		t.Fatalf("discovered list: %v\n%s", err, out)
	}
	out, err = run(t, "discovered", "assign", "52:54:00:17:00:01", "--name", "rack-1", "--profile", "ownedprofile", c)
	if err != nil || !strings.HasPrefix(out, "rack-1: install") {
		t.Fatalf("discovered assign: %v %q", err, out)
	}
	out, err = run(t, "host", "add", "--from-discovered", "52-54-00-17-00-02", "--name", "rack-2", "--profile", "ownedprofile", c)
	if err != nil || !strings.HasPrefix(out, "rack-2: added from discovered machine") {
		t.Fatalf("host add --from-discovered: %v %q", err, out)
	}
	if _, err := run(t, "host", "add", "rack-3", "--from-discovered", "52:54:00:17:00:02", "--profile", "ownedprofile", c); err == nil || !strings.Contains(err.Error(), "already assigned to host rack-2") {
		t.Errorf("a second assignment: %v", err)
	}
	if _, err := run(t, "discovered", "assign", "52:54:00:17:00:09", "--name", "rack-9", "--profile", "ownedprofile", c); err == nil {
		t.Error("assigning a MAC nobody reported worked")
	}
	out, err = run(t, "host", "show", "rack-1", "-o", "json", c)
	var h struct {
		State, UUID, Origin string
		MACs                []string
	}
	if err != nil || json.Unmarshal([]byte(out), &h) != nil || h.State != "install" || h.UUID != "8a9b0c1d-2e3f-4051-8697-a8b9cadbec01" || h.Origin != "live" || h.MACs[0] != "52:54:00:17:00:01" {
		t.Fatalf("rack-1: %v %s", err, out)
	}
	out, _ = run(t, "discovered", "list", "-o", "json", c)
	var ds []store.Discovered
	json.Unmarshal([]byte(out), &ds)
	if len(ds) != 2 || ds[0].Host != "rack-1" || ds[1].Host != "rack-2" {
		t.Fatalf("after assignment: %s", out)
	}
	tl, _ := run(t, "host", "timeline", "rack-2", c)
	if !strings.Contains(tl, "assigned from discovered machine 52:54:00:17:00:02") || !strings.Contains(tl, "(new) -> install (by cli)") {
		t.Errorf("rack-2's timeline:\n%s", tl)
	}
}
