package install

import (
	"context"
	"errors"
	"fmt"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// BMC is a host's baseboard management controller, as a reinstall uses
// it (internal/bmc implements it over IPMI). Its errors never carry the
// credentials.
type BMC interface {
	// PowerState is "on" or "off".
	PowerState(ctx context.Context) (string, error)
	// BootPXEOnce makes the next boot, and only it, a network boot.
	BootPXEOnce(ctx context.Context) error
	// PowerCycle turns the machine off and on again, or on if it is off.
	PowerCycle(ctx context.Context) error
	Close() error
}

// ErrNoBMC: the host has no bmc: in the inventory.
var ErrNoBMC = errors.New("no bmc")

// Reinstall is `kickstand host reinstall`: a fresh build token (Build),
// the next boot from PXE once, and a power cycle, each step on the host's
// timeline. A BMC that fails leaves the host in install, with the failure
// on the timeline: powering it by hand then installs it.
func (s *Service) Reinstall(ctx context.Context, host string, by Cause) (*inventory.HostRecord, error) {
	old, err := s.d.Store.Host(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("reinstall %s: %w", host, err)
	}
	if old.BMC == nil {
		return nil, fmt.Errorf("reinstall %s: the host has no bmc: in the inventory, so kickstand cannot power it: %w", host, ErrNoBMC)
	}
	if s.d.BMC == nil {
		return nil, fmt.Errorf("reinstall %s: no BMC driver: %w", host, ErrNoBMC)
	}
	bmc, err := s.d.BMC(ctx, &old.Host)
	if err != nil {
		s.bmcEvent(ctx, host, "bmc failed: "+err.Error(), map[string]any{"error": err.Error()})
		return nil, fmt.Errorf("reinstall %s: %w", host, err)
	}
	defer bmc.Close()
	rec, err := s.Build(ctx, host, by)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"next boot from PXE (once)", bmc.BootPXEOnce},
		{"power cycle", bmc.PowerCycle},
	}
	for _, st := range steps {
		if err := st.do(ctx); err != nil {
			s.bmcEvent(ctx, host, fmt.Sprintf("bmc %s at %s failed: %v; the host stays in install: power it on by hand to install", st.what, old.BMC.Address, err),
				map[string]any{"step": st.what, "address": old.BMC.Address, "error": err.Error()})
			return rec, fmt.Errorf("reinstall %s: %s: %w", host, st.what, err)
		}
		s.bmcEvent(ctx, host, fmt.Sprintf("bmc %s: %s", old.BMC.Address, st.what), map[string]any{"step": st.what, "address": old.BMC.Address})
	}
	s.d.Log.InfoContext(ctx, "host reinstall: power cycled into PXE", "host", host, "bmc", old.BMC.Address, "by", by.String())
	return rec, nil
}

func (s *Service) bmcEvent(ctx context.Context, host, detail string, data map[string]any) {
	s.record(ctx, store.Event{Host: host, At: s.now(), Kind: "bmc", Detail: detail, Data: data})
}
