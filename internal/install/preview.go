package install

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/render"
	"github.com/kickstand/kickstand/internal/store"
)

// Choose takes a choice from the boot menu. Choosing is a claim, so it is
// honoured only when the menu is this machine's to see (it is unknown and
// menu.unknown is menu, or its host is in state menu) and the host is on
// it. The machine's address (and MAC, from its lease) is then bound to the
// chosen host for that install and the choice put on the host's timeline;
// only then is the install returned. The kickstart request that follows
// from the same address passes the identity rule, and nobody else's does.
// Otherwise the machine gets what it would get without choosing.
func (s *Service) Choose(ctx context.Context, f boot.Facts, host string) (boot.Plan, error) {
	b := s.d.Booter
	asked := f
	in, f, err := b.Inputs(ctx, f)
	if err != nil {
		return boot.Plan{}, err
	}
	p := boot.Decide(f, in)
	if p.Action != boot.ActionMenu {
		return p, nil
	}
	offered := false
	for _, e := range p.Menu {
		offered = offered || e.Host == host
	}
	rec := b.Index.Host(host)
	if !offered || rec == nil {
		return p, nil
	}
	b.Choose(f.ClientIP, f.MAC, rec)
	mac := f.MAC
	if mac == "" {
		mac = "unknown"
	}
	s.record(ctx, store.Event{Host: host, At: s.now(), Kind: "menu",
		Detail: fmt.Sprintf("chosen from the boot menu by %s (mac %s)", f.ClientIP, mac),
		Data:   map[string]any{"client": f.ClientIP.String(), "mac": f.MAC}})
	s.d.Log.InfoContext(ctx, "menu choice", "host", host, "client", f.ClientIP.String(), "mac", f.MAC)
	return b.BootSpec(ctx, asked)
}

// PreviewRequest asks what the server would send a host.
type PreviewRequest struct {
	Host string
	// Kind is ipxe, grub, pxelinux, cmdline or kickstart; "" for the
	// plan alone.
	Kind string
	// Firmware is bios, uefi or "" (the firmware does not say).
	Firmware string
	// Family is the network the request arrives on, 4 or 6; 0 is the
	// one the host's firmware uses: IPv4 unless its only static address
	// is IPv6.
	Family int
	// AsBuild previews a host that is not installing as it would be
	// right after `kickstand host build`, with "<token>" for the token
	// that build would mint. Without it such a host gets what the
	// server gives it now.
	AsBuild bool
}

// Preview is the answer, as the server would send it.
type Preview struct {
	Body []byte
	Plan boot.Plan
	Kickstart
}

// Preview renders what the server sends the host, through the same
// decision and the same rendering, from the facts its own request would
// carry (previewFacts). Only identification is skipped: the host is named.
func (s *Service) Preview(ctx context.Context, r PreviewRequest) (Preview, error) {
	t, err := s.d.Booter.TargetByName(ctx, r.Host)
	if err != nil {
		return Preview{}, fmt.Errorf("render %s: %w", r.Host, err)
	}
	f, proof, err := previewFacts(s.d.Config(), t.Record, r)
	if err != nil {
		return Preview{}, err
	}
	var notes []string
	if r.AsBuild && (t.Record.State != inventory.StateInstall || !t.Record.TokenValid(s.now())) {
		rec := *t.Record
		notes = append(notes, fmt.Sprintf("preview as after `kickstand host build %s`: the host is in state %s now", r.Host, rec.State))
		rec.State, rec.Token = inventory.StateInstall, "<token>"
		rec.TokenExpires = s.now().Add(tokenTTL(s.d.Config()))
		t.Record = &rec
	}
	in := s.d.Booter.InputsFor(f, t)
	in.Proof = proof
	p := boot.Decide(f, in)
	p.Explain = append(notes, p.Explain...)
	out := Preview{Plan: p}
	switch r.Kind {
	case "":
	case "ipxe":
		out.Body = render.IPXE(p)
	case "grub":
		out.Body = render.GRUB(p)
	case "pxelinux":
		out.Body = render.PXELINUX(p)
	case "cmdline":
		if p.Action != boot.ActionInstall {
			return out, fmt.Errorf("render cmdline %s: the host is not installing (action %s): run `kickstand host build %s`, or preview with --as-build", r.Host, p.Action, r.Host)
		}
		out.Body = []byte(p.Cmdline + "\n")
	case "kickstart":
		if t.Record.State != inventory.StateInstall || !t.Record.TokenValid(s.now()) {
			return out, fmt.Errorf("render kickstart %s: the host is not installing, so the server serves no kickstart for it: run `kickstand host build %s`, or preview with --as-build", r.Host, r.Host)
		}
		ks, err := s.renderKickstart(t, f)
		if err != nil {
			return out, err
		}
		out.Kickstart, out.Body = ks, ks.Body
		if msgs, refuse := lintGate(t, ks); refuse {
			return out, &LintError{Host: r.Host, Problems: msgs}
		}
	default:
		return out, fmt.Errorf("render: unknown kind %q: want ipxe, grub, pxelinux, kickstart or cmdline", r.Kind)
	}
	return out, nil
}

// previewFacts are the facts the host's own request would carry: the
// loader that asks, the firmware, the family it arrives on and the server
// address it arrives at, the MAC its lease would show, and the proof that
// would identify it (its static address of that family, else a lease).
func previewFacts(cfg *inventory.Config, rec *inventory.HostRecord, r PreviewRequest) (boot.Facts, boot.Proof, error) {
	f := boot.Facts{Firmware: boot.FirmwareIPXE, Arch: boot.ArchNone, Family: r.Family}
	switch r.Kind {
	case "grub":
		f.Firmware = boot.FirmwareGRUB
	case "pxelinux":
		f.Firmware = boot.FirmwarePXELINUX
	}
	switch r.Firmware {
	case "bios":
		f.Arch = boot.ArchBIOS
	case "uefi":
		f.Arch = boot.ArchEFIX64
	case "":
	default:
		return f, "", fmt.Errorf("render: --firmware: want bios or uefi, not %q", r.Firmware)
	}
	a4, has4 := rec.Addr4()
	a6, has6 := rec.Addr6()
	switch f.Family {
	case 0:
		f.Family = 4
		if !has4 && has6 {
			f.Family = 6
		}
	case 4, 6:
	default:
		return f, "", fmt.Errorf("render: --family: want 4 or 6, not %d", r.Family)
	}
	proof := boot.ProofLease
	switch {
	case f.Family == 4 && has4:
		f.ClientIP, proof = a4.Addr(), boot.ProofStatic
	case f.Family == 6 && has6:
		f.ClientIP, proof = a6.Addr(), boot.ProofStatic
	case len(rec.MACs) > 0:
		f.MAC = rec.MACs[0]
	}
	server := cfg.Server.AddressV4
	if f.Family == 6 {
		server = cfg.Server.AddressV6
	}
	f.ServerIP, _ = netip.ParseAddr(server)
	return f, proof, nil
}

// Follow keeps the host index in step with writes by other servers
// sharing the store, until ctx ends.
func (s *Service) Follow(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.d.Booter.Follow(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.d.Log.Warn("host index: cannot follow the store; answering from what it last read", "err", err)
		case err == nil && failing:
			s.d.Log.Info("host index: following the store again")
		}
		failing = err != nil
	}
}
