package install

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
)

type fakeBMC struct {
	calls    []string
	failStep string
}

func (b *fakeBMC) PowerState(context.Context) (string, error) { return "on", nil }
func (b *fakeBMC) BootPXEOnce(context.Context) error          { return b.step("pxe") }
func (b *fakeBMC) PowerCycle(context.Context) error           { return b.step("cycle") }
func (b *fakeBMC) Close() error                               { return nil }
func (b *fakeBMC) step(s string) error {
	b.calls = append(b.calls, s)
	if s == b.failStep {
		return errors.New("the BMC did not answer after 3 attempts")
	}
	return nil
}

// A reinstall builds, sets PXE once, then power cycles, each on the
// timeline; a power cycle that fails leaves the host in install with the
// failure recorded; a host without bmc: is refused before anything.
func TestReinstall(t *testing.T) {
	r := newRig(t, func(c *inventory.Config) {
		c.Hosts[2].Netboot = inventory.StateLocal
		c.Hosts[2].BMC = &inventory.BMC{Driver: "ipmi", Address: "192.0.2.200"}
	})
	b := &fakeBMC{}
	r.lc.d.BMC = func(context.Context, *inventory.Host) (BMC, error) { return b, nil }
	rec, err := r.lc.Reinstall(ctx, "pool", ByCLI)
	if err != nil || rec.State != inventory.StateInstall || strings.Join(b.calls, ",") != "pxe,cycle" {
		t.Fatalf("reinstall: %+v %v, calls %v", rec, err, b.calls)
	}
	evs, _ := r.st.Events(ctx, "pool", 0, 0)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind+": "+e.Detail)
	}
	tl := strings.Join(kinds, "\n")
	for _, want := range []string{"local -> install (by cli)", "bmc 192.0.2.200: next boot from PXE (once)", "bmc 192.0.2.200: power cycle"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}

	b2 := &fakeBMC{failStep: "cycle"}
	r.lc.d.BMC = func(context.Context, *inventory.Host) (BMC, error) { return b2, nil }
	if _, err := r.lc.SetState(ctx, "pool", inventory.StateLocal, ByCLI); err != nil {
		t.Fatal(err)
	}
	rec, err = r.lc.Reinstall(ctx, "pool", ByCLI)
	if err == nil || !strings.Contains(err.Error(), "did not answer") || rec == nil || rec.State != inventory.StateInstall {
		t.Fatalf("failed power cycle: %+v %v", rec, err)
	}
	evs, _ = r.st.Events(ctx, "pool", 0, 0)
	if last := evs[len(evs)-1]; last.Kind != "bmc" || !strings.Contains(last.Detail, "power cycle at 192.0.2.200 failed") || !strings.Contains(last.Detail, "stays in install") {
		t.Errorf("last event: %+v", last)
	}

	if _, err := r.lc.Reinstall(ctx, "stat", ByCLI); !errors.Is(err, ErrNoBMC) {
		t.Errorf("host without bmc: %v", err)
	}
	evs, _ = r.st.Events(ctx, "stat", 0, 0)
	for _, e := range evs {
		if e.Kind == "bmc" || strings.Contains(e.Detail, "by cli") {
			t.Errorf("a refused reinstall left an event: %+v", e)
		}
	}
}
