package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Server is the part of the config that describes kickstand itself.
type Server struct {
	// HTTP is the listen address; ":8080" listens on IPv4 and IPv6.
	HTTP string `yaml:"http,omitempty" json:"http,omitempty"`
	// AddressV4/V6 are the addresses clients use to reach this server. When
	// empty, kickstand uses the address a request arrived on.
	AddressV4 string `yaml:"address_v4,omitempty" json:"address_v4,omitempty"`
	AddressV6 string `yaml:"address_v6,omitempty" json:"address_v6,omitempty"`
	// HTTPPort is the port written into URLs; default: the HTTP listen port.
	HTTPPort int    `yaml:"http_port,omitempty" json:"http_port,omitempty"`
	DataDir  string `yaml:"data_dir,omitempty" json:"data_dir,omitempty"`
	// Store is a postgres:// URL when several kickstand servers share one
	// inventory and lease space; empty means SQLite in data_dir.
	Store string `yaml:"store,omitempty" json:"-"`
	Root  string `yaml:"root,omitempty" json:"root,omitempty"` // served at / over HTTP and TFTP
	// Loaders are extra directories searched for loaders (undionly.kpxe,
	// ipxe.efi, grubx64.efi, pxelinux.0 ...) before Debian's standard paths.
	Loaders   []string `yaml:"loaders,omitempty" json:"loaders,omitempty"`
	Templates string   `yaml:"templates,omitempty" json:"templates,omitempty"` // kickstart templates; snippets in snippets/
	// TokenTTL bounds how long a build token (and so a kickstart URL) is valid.
	TokenTTL Duration `yaml:"token_ttl,omitempty" json:"token_ttl,omitempty"`
	// TokenAnyAddress serves a kickstart (and takes callbacks) under a
	// valid token from any address. By default the request must come from
	// the host's own address when it has a static one (see README).
	TokenAnyAddress bool `yaml:"token_any_address,omitempty" json:"token_any_address,omitempty"`
	// APIOpenReads lets anyone read /api/v1 without a bearer token;
	// mutations always need one.
	APIOpenReads bool `yaml:"api_open_reads,omitempty" json:"api_open_reads,omitempty"`
	// RouteWait bounds kickstand's waits for an IPv6 default route in the
	// seed-000 fixes (overlay initrd, updates.img).
	RouteWait Duration `yaml:"route_wait,omitempty" json:"route_wait,omitempty"`
}

// Duration is a time.Duration written as "6h" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is the declarative inventory file.
type Config struct {
	Server   Server    `yaml:"server" json:"server"`
	Distros  []Distro  `yaml:"distros" json:"distros"`
	Profiles []Profile `yaml:"profiles" json:"profiles"`
	Hosts    []Host    `yaml:"hosts" json:"hosts"`
	Menu     Menu      `yaml:"menu" json:"menu"`
	DHCP     DHCP      `yaml:"dhcp" json:"dhcp"`
	DHCP6    DHCP6     `yaml:"dhcp6" json:"dhcp6"`
	TFTP     TFTP      `yaml:"tftp" json:"tftp"`
	Syslog   Syslog    `yaml:"syslog" json:"syslog"`

	// Path is the file the config came from; relative paths in it are
	// resolved against its directory.
	Path string `yaml:"-" json:"-"`
	// Warnings are problems that do not stop kickstand; callers show them.
	Warnings []string `yaml:"-" json:"-"`
}

// Defaults operators would expect when the file says nothing.
const (
	DefaultHTTP     = ":8080"
	DefaultTokenTTL = 6 * time.Hour
)

// Load reads, defaults and validates a config file. Every problem found is
// reported, each prefixed with file:line and the field's path, so one run
// shows everything that needs fixing.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for bytes already read; path is used for messages and for
// resolving relative paths.
func Parse(path string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	c.applyDefaults()
	v := validator{file: path, root: &root}
	v.check(&c)
	c.Warnings = v.warns
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	s := &c.Server
	if s.HTTP == "" {
		s.HTTP = DefaultHTTP
	}
	if s.HTTPPort == 0 {
		if _, p, err := splitHostPort(s.HTTP); err == nil {
			s.HTTPPort = p
		}
	}
	if s.TokenTTL == 0 {
		s.TokenTTL = Duration(DefaultTokenTTL)
	}
	if s.RouteWait == 0 {
		s.RouteWait = Duration(30 * time.Second)
	}
	if s.DataDir == "" {
		s.DataDir = "data"
	}
	if s.Templates == "" {
		s.Templates = "templates"
	}
	if c.Menu.Unknown == "" {
		c.Menu.Unknown = "menu"
	}
	if c.Menu.Title == "" {
		c.Menu.Title = "kickstand"
	}
	if c.Menu.Timeout == 0 {
		c.Menu.Timeout = 30
	}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		if h.Platform == "" {
			h.Platform = PlatformBaremetal
		}
		if h.Netboot == "" {
			h.Netboot = StateLocal
		}
		for j, m := range h.MACs {
			if n := NormalMAC(m); n != "" {
				h.MACs[j] = n
			}
		}
		h.UUID = NormalUUID(h.UUID)
	}
	if c.DHCP.Mode == "" {
		c.DHCP.Mode = "server"
	}
	if c.DHCP.Workers == 0 {
		c.DHCP.Workers = 64
	}
	for i := range c.DHCP.Subnets {
		if c.DHCP.Subnets[i].LeaseTime == 0 {
			c.DHCP.Subnets[i].LeaseTime = Duration(time.Hour)
		}
	}
	if c.Syslog.Listen == "" {
		c.Syslog.Listen = ":514"
	}
	c.DHCP6.applyDefaults()
	if c.TFTP.Listen == "" {
		c.TFTP.Listen = ":69"
	}
	if c.TFTP.MaxTransfers == 0 {
		c.TFTP.MaxTransfers = 512
	}
	for i := range c.Profiles {
		if c.Profiles[i].Loader == "" {
			c.Profiles[i].Loader = LoaderIPXE
		}
	}
}

// Abs resolves a path from the config against the config file's directory.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// CheckFiles verifies that what the config points at exists. Rendering does
// not need the files, but serving does, so serve and doctor call this.
func (c *Config) CheckFiles() error {
	var errs []error
	for _, d := range c.Distros {
		if d.Tree == "" {
			errs = append(errs, fmt.Errorf("%s: distro %s: tree: not set, so kernel %q cannot be served", c.Path, d.Name, d.Kernel))
			continue
		}
		for _, f := range append([]string{d.Kernel, d.Shim, d.GRUB}, d.Initrds...) {
			if f == "" {
				continue
			}
			p := filepath.Join(c.Abs(d.Tree), f)
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				errs = append(errs, fmt.Errorf("%s: distro %s: missing file %s", c.Path, d.Name, p))
			}
		}
	}
	for _, p := range c.Profiles {
		if p.Kickstart == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.Abs(c.Server.Templates), p.Kickstart)); err != nil {
			errs = append(errs, fmt.Errorf("%s: profile %s: kickstart: %w", c.Path, p.Name, err))
		}
	}
	return errors.Join(errs...)
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port in %q", s)
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", s)
	}
	return strings.Trim(s[:i], "[]"), p, nil
}

type validator struct {
	file  string
	root  *yaml.Node
	errs  []error
	warns []string
}

func (v *validator) warnf(path []any, format string, args ...any) {
	n := len(v.errs)
	v.errf(path, format, args...)
	v.warns = append(v.warns, v.errs[n].Error())
	v.errs = v.errs[:n]
}

// errf records a problem at the YAML node addressed by path (map keys and
// sequence indexes), naming the field so the operator can find it.
func (v *validator) errf(path []any, format string, args ...any) {
	var name strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&name, "[%d]", p)
		default:
			if i > 0 {
				name.WriteByte('.')
			}
			fmt.Fprint(&name, p)
		}
	}
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s: %s", v.file, v.line(path), name.String(), fmt.Sprintf(format, args...)))
}

func (v *validator) line(path []any) int {
	n := v.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						line = n.Content[i].Line
						next = n.Content[i+1]
					}
				}
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$`)
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (v *validator) check(c *Config) {
	s := c.Server
	if _, _, err := splitHostPort(s.HTTP); err != nil {
		v.errf([]any{"server", "http"}, "%v", err)
	}
	if s.AddressV4 != "" {
		if a, err := netip.ParseAddr(s.AddressV4); err != nil || !a.Is4() {
			v.errf([]any{"server", "address_v4"}, "not an IPv4 address: %q", s.AddressV4)
		}
	}
	if s.AddressV6 != "" {
		if a, err := netip.ParseAddr(s.AddressV6); err != nil || !a.Is6() || a.Is4In6() {
			v.errf([]any{"server", "address_v6"}, "not an IPv6 address: %q", s.AddressV6)
		}
	}

	distros := map[string]bool{}
	for i, d := range c.Distros {
		at := func(f string) []any { return []any{"distros", i, f} }
		switch {
		case d.Name == "":
			v.errf(at("name"), "missing")
		case distros[d.Name]:
			v.errf(at("name"), "duplicate distro %q", d.Name)
		}
		distros[d.Name] = true
		if _, err := ParseRelease(d.Release); err != nil {
			v.errf(at("release"), "%v", err)
		}
		if d.Kernel == "" {
			v.errf(at("kernel"), "missing")
		}
		if len(d.Initrds) == 0 {
			v.errf(at("initrd"), "missing: a distro needs at least one initrd")
		}
		for _, f := range []string{"shim", "grub"} {
			p := map[string]string{"shim": d.Shim, "grub": d.GRUB}[f]
			if p != "" && !cleanRel(p) {
				v.errf(at(f), "%q must be a path inside the tree (no .., not absolute)", p)
			}
		}
		if d.Arch != "" && CPUName(d.Arch) == "" {
			v.errf(at("arch"), "unknown arch %q (want x86_64, aarch64, i686, armv7, ppc64le or s390x)", d.Arch)
		}
		for j, f := range append([]string{d.Kernel}, d.Initrds...) {
			if f != "" && !cleanRel(f) {
				field := at("kernel")
				if j > 0 {
					field = []any{"distros", i, "initrd", j - 1}
				}
				v.errf(field, "%q must be a path inside the tree (no .., not absolute)", f)
			}
		}
	}

	profiles := map[string]bool{}
	for i, p := range c.Profiles {
		at := func(f string) []any { return []any{"profiles", i, f} }
		switch {
		case p.Name == "":
			v.errf(at("name"), "missing")
		case profiles[p.Name]:
			v.errf(at("name"), "duplicate profile %q", p.Name)
		}
		profiles[p.Name] = true
		if !distros[p.Distro] {
			v.errf(at("distro"), "unknown distro %q", p.Distro)
		}
		switch p.Loader {
		case LoaderIPXE, LoaderGRUB, LoaderPXELINUX, LoaderShim:
		default:
			v.errf(at("loader"), "unknown loader %q (want ipxe, grub, pxelinux or shim)", p.Loader)
		}
		if p.SecureBoot && p.InsistLoader && p.Loader != LoaderShim && p.Loader != LoaderGRUB {
			v.errf(at("insist_loader"), "secure_boot hands UEFI machines shim and GRUB, so it cannot insist on loader %s", p.Loader)
		}
		if p.Stage2 != "" && !strings.Contains(p.Stage2, "://") && !cleanRel(p.Stage2) {
			v.errf(at("stage2"), "%q must be a URL or a directory inside the distro's tree", p.Stage2)
		}
		for j, by := range p.KickstartBy {
			if by != "mac" && by != "ip" {
				v.errf([]any{"profiles", i, "kickstart_by", j}, "want mac or ip, not %q", by)
			}
		}
		switch p.Lint {
		case "", "error", "warn":
		default:
			v.errf(at("lint"), "want error or warn, not %q", p.Lint)
		}
		switch p.Fixes {
		case "", "auto", "off":
		default:
			v.errf(at("fixes"), "want auto or off, not %q", p.Fixes)
		}
		switch p.Platform {
		case "", PlatformBaremetal, PlatformKVM, PlatformXen:
		default:
			v.errf(at("platform"), "unknown platform %q (want baremetal, kvm or xen)", p.Platform)
		}
		if p.Kickstart != "" && !cleanRel(p.Kickstart) {
			v.errf(at("kickstart"), "%q must be a path inside the templates directory", p.Kickstart)
		}
	}

	names, macs, uuids, addrs := map[string]int{}, map[string]string{}, map[string]string{}, map[netip.Addr]string{}
	for i, h := range c.Hosts {
		at := func(f ...any) []any { return append([]any{"hosts", i}, f...) }
		switch {
		case h.Name == "":
			v.errf(at("name"), "missing")
		case !hostnameRE.MatchString(h.Name):
			v.errf(at("name"), "%q is not a valid host name", h.Name)
		}
		if j, dup := names[h.Name]; dup && h.Name != "" {
			v.errf(at("name"), "duplicate host %q (also hosts[%d])", h.Name, j)
		}
		names[h.Name] = i
		for j, m := range h.MACs {
			n := NormalMAC(m)
			if n == "" {
				v.errf(at("macs", j), "%q is not a MAC address", m)
				continue
			}
			if other, dup := macs[n]; dup {
				v.errf(at("macs", j), "MAC %s is also used by host %s", n, other)
			}
			macs[n] = h.Name
		}
		if h.UUID != "" {
			if !uuidRE.MatchString(h.UUID) {
				v.errf(at("uuid"), "%q is not a UUID", h.UUID)
			} else if other, dup := uuids[h.UUID]; dup {
				v.errf(at("uuid"), "UUID %s is also used by host %s", h.UUID, other)
			}
			uuids[h.UUID] = h.Name
		}
		v.checkAddr(at("ipv4"), h.IPv4, 4, h.Name, addrs)
		v.checkAddr(at("ipv6"), h.IPv6, 6, h.Name, addrs)
		v.checkIP(at("gateway4"), h.Gateway4, 4)
		v.checkIP(at("gateway6"), h.Gateway6, 6)
		if h.Gateway4 != "" && h.IPv4 == "" {
			v.errf(at("gateway4"), "set without ipv4")
		}
		if h.Gateway6 != "" && h.IPv6 == "" {
			v.errf(at("gateway6"), "set without ipv6")
		}
		for j, ns := range h.Nameservers {
			// Seed 000's own nameservers (2401:beef:11:a53) are not valid
			// IPv6, yet its installs worked, so a malformed nameserver is a
			// warning and is rendered exactly as written.
			if _, err := netip.ParseAddr(ns); err != nil {
				v.warnf(at("nameservers", j), "%q is not an IP address; rendered as written", ns)
			}
		}
		switch h.Platform {
		case PlatformBaremetal, PlatformKVM, PlatformXen:
		default:
			v.errf(at("platform"), "unknown platform %q (want baremetal, kvm or xen)", h.Platform)
		}
		switch h.Netboot {
		case StateInstall, StateLocal, StateMenu:
		default:
			v.errf(at("netboot"), "unknown state %q (want install, local or menu)", h.Netboot)
		}
		if h.Profile == "" {
			v.errf(at("profile"), "missing")
		} else if !profiles[h.Profile] {
			v.errf(at("profile"), "unknown profile %q", h.Profile)
		}
		if len(h.MACs) == 0 && h.UUID == "" {
			v.errf(at("macs"), "host %s has neither macs nor uuid, so no machine can be matched to it", h.Name)
		}
	}

	v.checkDHCP(&c.DHCP)
	v.checkDHCP6(&c.DHCP6, c.Hosts)
	if _, _, err := splitHostPort(c.Syslog.Listen); err != nil {
		v.errf([]any{"syslog", "listen"}, "%v", err)
	}

	switch c.Menu.Unknown {
	case "menu", "ignore":
	default:
		v.errf([]any{"menu", "unknown"}, "want menu or ignore, not %q", c.Menu.Unknown)
	}
	for j, n := range c.Menu.Hosts {
		if _, ok := names[n]; !ok {
			v.errf([]any{"menu", "hosts", j}, "unknown host %q", n)
		}
	}
}

// checkAddr validates an address/prefix of the given family and rejects a
// second host on the same address, which would split DHCP and DNS.
func (v *validator) checkAddr(path []any, s string, family int, host string, seen map[netip.Addr]string) {
	if s == "" {
		return
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		v.errf(path, "%q is not an address/prefix such as %s", s, map[int]string{4: "192.0.2.10/24", 6: "2001:db8::10/64"}[family])
		return
	}
	if (family == 4) != p.Addr().Is4() {
		v.errf(path, "%q is not an IPv%d address", s, family)
		return
	}
	if other, dup := seen[p.Addr()]; dup {
		v.errf(path, "address %s is also used by host %s", p.Addr(), other)
	}
	seen[p.Addr()] = host
}

func (v *validator) checkIP(path []any, s string, family int) {
	if s == "" {
		return
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		v.errf(path, "%q is not an IP address", s)
	case family == 4 && !a.Is4(), family == 6 && !a.Is6():
		v.errf(path, "%q is not an IPv%d address", s, family)
	}
}

// cleanRel accepts only relative paths that stay inside their base.
func cleanRel(p string) bool {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "/") {
		return false
	}
	c := filepath.Clean(p)
	return c != ".." && !strings.HasPrefix(c, "../")
}

func (v *validator) checkDHCP(d *DHCP) {
	switch d.Mode {
	case "server", "proxy":
	default:
		v.errf([]any{"dhcp", "mode"}, "want server or proxy, not %q", d.Mode)
	}
	if d.Enabled && len(d.Interfaces) == 0 {
		v.errf([]any{"dhcp", "interfaces"}, "dhcp is enabled but names no interfaces: kickstand never serves DHCP on every interface")
	}
	if d.Enabled && d.Mode == "server" && len(d.Subnets) == 0 {
		v.errf([]any{"dhcp", "subnets"}, "dhcp server mode needs at least one subnet")
	}
	for i, s := range d.Subnets {
		at := func(f ...any) []any { return append([]any{"dhcp", "subnets", i}, f...) }
		pfx, err := netip.ParsePrefix(s.Subnet)
		if err != nil || !pfx.Addr().Is4() {
			v.errf(at("subnet"), "%q is not an IPv4 network such as 192.0.2.0/24", s.Subnet)
			continue
		}
		if s.Pool != "" {
			lo, hi, err := ParsePool(s.Pool)
			switch {
			case err != nil:
				v.errf(at("pool"), "%v", err)
			case !pfx.Contains(lo) || !pfx.Contains(hi):
				v.errf(at("pool"), "pool %s is not inside subnet %s", s.Pool, pfx)
			}
		}
		for j, r := range s.Routers {
			v.checkIP(at("routers", j), r, 4)
		}
		for j, r := range s.DNS {
			v.checkIP(at("dns", j), r, 4)
		}
		for j, r := range s.NTP {
			v.checkIP(at("ntp", j), r, 4)
		}
	}
}

// ParsePool parses "first-last" into two IPv4 addresses, first <= last.
func ParsePool(s string) (netip.Addr, netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := netip.ParseAddr(strings.TrimSpace(a))
	hi, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() || hi.Less(lo) {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("pool %q: want first-last IPv4 addresses, such as 192.0.2.100-192.0.2.199", s)
	}
	return lo, hi, nil
}
