package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
)

// openLive opens the inventory for commands that change live objects:
// the real store, created if need be.
func openLive(ctx context.Context, g *globals) (*server.Instance, error) {
	return server.Open(ctx, g.config, server.Options{DataDir: g.data, Store: g.store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// hostFlags are a host's fields as flags, shared by `host add` and
// `host edit` (and by whatever else makes a host from flags): an edit
// changes only the flags given.
type hostFlags struct {
	h    inventory.Host
	vars []string
	fs   *pflag.FlagSet
}

func (f *hostFlags) bind(fs *pflag.FlagSet) {
	f.fs = fs
	h := &f.h
	fs.StringSliceVar(&h.MACs, "mac", nil, "MAC address (repeat or comma-separate for several)")
	fs.StringVar(&h.UUID, "uuid", "", "SMBIOS UUID")
	fs.StringVar(&h.IPv4, "ipv4", "", "static IPv4 address/prefix, e.g. 192.0.2.10/24")
	fs.StringVar(&h.Gateway4, "gateway4", "", "IPv4 gateway")
	fs.StringVar(&h.IPv6, "ipv6", "", "static IPv6 address/prefix, e.g. 2001:db8::10/64")
	fs.StringVar(&h.Gateway6, "gateway6", "", "IPv6 gateway")
	fs.StringSliceVar(&h.Nameservers, "nameserver", nil, "name server (repeat for several)")
	fs.StringSliceVar(&h.NTP, "ntp", nil, "NTP server (repeat for several)")
	fs.StringVar(&h.Timezone, "timezone", "", "time zone, e.g. Europe/Berlin")
	fs.StringVar(&h.Interface, "interface", "", "install interface name")
	fs.StringVar(&h.Platform, "platform", "", "baremetal (default), kvm or xen")
	fs.StringVar(&h.Profile, "profile", "", "profile to install")
	fs.StringVar(&h.Netboot, "netboot", "", "netboot state: local (default), install or menu")
	fs.StringArrayVar(&f.vars, "var", nil, "template variable NAME=VALUE (repeat; NAME= removes it on edit)")
}

// apply writes the flags that were given onto h.
func (f *hostFlags) apply(h *inventory.Host) error {
	set := func(name string, dst any, src any) {
		if !f.fs.Changed(name) {
			return
		}
		switch d := dst.(type) {
		case *string:
			*d = *src.(*string)
		case *[]string:
			*d = *src.(*[]string)
		}
	}
	n := &f.h
	set("mac", &h.MACs, &n.MACs)
	set("uuid", &h.UUID, &n.UUID)
	set("ipv4", &h.IPv4, &n.IPv4)
	set("gateway4", &h.Gateway4, &n.Gateway4)
	set("ipv6", &h.IPv6, &n.IPv6)
	set("gateway6", &h.Gateway6, &n.Gateway6)
	set("nameserver", &h.Nameservers, &n.Nameservers)
	set("ntp", &h.NTP, &n.NTP)
	set("timezone", &h.Timezone, &n.Timezone)
	set("interface", &h.Interface, &n.Interface)
	set("platform", &h.Platform, &n.Platform)
	set("profile", &h.Profile, &n.Profile)
	set("netboot", &h.Netboot, &n.Netboot)
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--var %q: want NAME=VALUE", kv)
		}
		if h.Vars == nil {
			h.Vars = map[string]string{}
		}
		if v == "" {
			delete(h.Vars, k)
		} else {
			h.Vars[k] = v
		}
	}
	return nil
}

// profileFlags are a profile's fields as flags, as hostFlags.
type profileFlags struct {
	p  inventory.Profile
	fs *pflag.FlagSet
}

func (f *profileFlags) bind(fs *pflag.FlagSet) {
	f.fs = fs
	p := &f.p
	fs.StringVar(&p.Distro, "distro", "", "distro to install")
	fs.StringVar(&p.Kickstart, "kickstart", "", "kickstart template (in the templates directory)")
	fs.StringVar(&p.KernelArgs, "kernel-args", "", "extra kernel arguments")
	fs.StringVar(&p.Loader, "loader", "", "ipxe (default), grub, pxelinux or shim")
	fs.BoolVar(&p.SecureBoot, "secure-boot", false, "hand UEFI machines the distro's shim")
	fs.BoolVar(&p.InsistLoader, "insist-loader", false, "the profile's loader is the only answer")
	fs.StringVar(&p.Platform, "platform", "", "baremetal, kvm or xen (overrides the hosts')")
	fs.StringVar(&p.Fixes, "fixes", "", "auto (default) or off")
	fs.StringVar(&p.Stage2, "stage2", "", "stage2 URL or tree directory")
	fs.StringSliceVar(&p.KickstartBy, "kickstart-by", nil, "serve /ks without a token by mac or ip")
	fs.StringVar(&p.Lint, "lint", "", "error (default) or warn")
}

func (f *profileFlags) apply(p *inventory.Profile) {
	n := &f.p
	for name, c := range map[string]func(){
		"distro": func() { p.Distro = n.Distro }, "kickstart": func() { p.Kickstart = n.Kickstart },
		"kernel-args": func() { p.KernelArgs = n.KernelArgs }, "loader": func() { p.Loader = n.Loader },
		"secure-boot": func() { p.SecureBoot = n.SecureBoot }, "insist-loader": func() { p.InsistLoader = n.InsistLoader },
		"platform": func() { p.Platform = n.Platform }, "fixes": func() { p.Fixes = n.Fixes },
		"stage2": func() { p.Stage2 = n.Stage2 }, "kickstart-by": func() { p.KickstartBy = n.KickstartBy },
		"lint": func() { p.Lint = n.Lint },
	} {
		if f.fs.Changed(name) {
			c()
		}
	}
}

// liveCmd is the shape of add/edit/rm commands: open the store, run the
// change, print one line (a change that prints itself returns "").
func liveCmd(g *globals, use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, in *server.Instance, args []string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := openLive(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer in.Close()
			msg, err := run(cmd, in, args)
			if err != nil || msg == "" {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
}

// loadConfig loads the inventory file for commands that only read it,
// knowing the live profiles and distros it may use (a host on an imported
// distro's profile), without writing anything.
func loadConfig(ctx context.Context, g *globals) (*inventory.Config, error) {
	in, err := openPreview(ctx, g)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return in.Config(), nil
}
