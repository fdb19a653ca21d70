package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones are checked on machines without tzdata too
	"unicode"

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
	// HostsDir is a directory of more host files (*.yaml, each a hosts:
	// list), loaded in name order after this file's hosts. Default:
	// hosts.d beside this file, when it exists. An edit there re-reads
	// only the files that changed.
	HostsDir string `yaml:"hosts_dir,omitempty" json:"hosts_dir,omitempty"`
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
		// A TypeError lets yaml.v3 go on decoding the rest of the file,
		// so the other problems are reported with this one.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as 6h or 30s, not %q", n.Line, n.Value)}}
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
	// Discovery paces and bounds menu.unknown: discover.
	Discovery Discovery `yaml:"discovery" json:"discovery"`

	// Path is the file the config came from; relative paths in it are
	// resolved against its directory.
	Path string `yaml:"-" json:"-"`
	// Warnings are problems that do not stop kickstand; callers show them.
	Warnings []string `yaml:"-" json:"-"`

	// hostFiles are the files Hosts came from, in order: the main file,
	// then hosts.d.
	hostFiles []hostFile
}

// Defaults operators would expect when the file says nothing.
const (
	DefaultHTTP     = ":8080"
	DefaultTokenTTL = 6 * time.Hour
)

// Load reads, defaults and validates a config file and the hosts.d
// directory beside it. Every problem found is reported, each prefixed with
// file:line and the field's path, so one run shows everything that needs
// fixing. A server that reloads keeps a Loader instead, which re-reads
// only the files that changed.
func Load(path string) (*Config, error) {
	return (&Loader{Path: path}).Load(false)
}

// Parse is Load of one file's bytes, without a hosts.d directory; path is
// used for messages and for resolving relative paths.
func Parse(path string, data []byte) (*Config, error) {
	pf, err := decodeFile(path, data, false, chunkBytes, nil)
	if err != nil {
		return nil, err
	}
	return assemble(path, pf, nil, map[string][]byte{path: data}, nil)
}

// assemble makes the config of a main file and its hosts.d files (in
// order) and validates it. data holds the files read for this load; the
// others are read again only if a message needs a line in them.
func assemble(path string, main *parsedFile, dir []*parsedFile, data map[string][]byte, known func(*Config) (Known, error)) (*Config, error) {
	c := main.cfg
	c.Path = path
	c.Warnings = nil
	c.hostFiles = []hostFile{main.hosts}
	n := len(main.hosts.hosts)
	unknown := slices.Clone(main.unknown)
	for _, pf := range dir {
		c.hostFiles = append(c.hostFiles, pf.hosts)
		n += len(pf.hosts.hosts)
		unknown = append(unknown, pf.unknown...)
	}
	if len(dir) == 0 {
		c.Hosts = main.hosts.hosts
	} else {
		c.Hosts = make([]Host, 0, n)
		for _, f := range c.hostFiles {
			c.Hosts = append(c.Hosts, f.hosts...)
		}
	}
	v := validator{file: path, files: c.hostFiles, data: data, errs: unknown}
	if known != nil {
		k, err := known(&c)
		if err != nil {
			return nil, err // the store's failure, which names the store
		}
		v.known = k
		v.fileProfiles = k.ProfileSpecs // a file host on a live profile
	}
	v.check(&c)
	c.Warnings = v.warns
	if len(v.errs) > 0 {
		sortByLine(v.errs)
		return nil, errors.Join(v.errs...)
	}
	return &c, nil
}

var fileLineRE = regexp.MustCompile(`^(.*?):(\d+): `)

// sortByLine puts each file's problems in line order, as an operator
// reads the file; files keep the order they were first reported in, and
// problems without a line come after their file's others.
func sortByLine(errs []error) {
	rank := map[string]int{}
	key := func(e error) (int, int) {
		f, line := "", 1<<30
		if m := fileLineRE.FindStringSubmatch(e.Error()); m != nil {
			f = m[1]
			line, _ = strconv.Atoi(m[2])
		} else {
			f, _, _ = strings.Cut(e.Error(), ": ")
		}
		r, ok := rank[f]
		if !ok {
			r = len(rank)
			rank[f] = r
		}
		return r, line
	}
	type keyed struct {
		err        error
		file, line int
	}
	ks := make([]keyed, len(errs))
	for i, e := range errs {
		f, l := key(e)
		ks[i] = keyed{e, f, l}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		if a.file != b.file {
			return a.file - b.file
		}
		return a.line - b.line
	})
	for i := range ks {
		errs[i] = ks[i].err
	}
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
	c.Discovery.applyDefaults()
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

// applyDefaults fills in a host's defaults. It runs once, as the host is
// decoded: hosts of unchanged files are shared between loads.
func (h *Host) applyDefaults() {
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

// Abs resolves a path from the config against the config file's directory.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// CheckFiles verifies that what the config points at exists. Rendering does
// not need the files, but serving does, so serve and doctor call this.
// Problems name file:line: field, as the load's do.
func (c *Config) CheckFiles() error {
	v := validator{file: c.Path, files: c.hostFiles}
	for i, d := range c.Distros {
		if d.Tree == "" {
			v.errf([]any{"distros", i, "tree"}, "not set, so kernel %q of distro %s cannot be served", d.Kernel, d.Name)
			continue
		}
		files := []struct {
			path []any
			name string
		}{{[]any{"distros", i, "kernel"}, d.Kernel}, {[]any{"distros", i, "shim"}, d.Shim}, {[]any{"distros", i, "grub"}, d.GRUB}}
		for j, f := range d.Initrds {
			files = append(files, struct {
				path []any
				name string
			}{[]any{"distros", i, "initrd", j}, f})
		}
		for _, f := range files {
			if f.name == "" {
				continue
			}
			p := filepath.Join(c.Abs(d.Tree), f.name)
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				v.errf(f.path, "distro %s: missing file %s", d.Name, p)
			}
		}
	}
	for i, p := range c.Profiles {
		if p.Kickstart == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.Abs(c.Server.Templates), p.Kickstart)); err != nil {
			v.errf([]any{"profiles", i, "kickstart"}, "profile %s: %v", p.Name, err)
		}
	}
	return errors.Join(v.errs...)
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
	file  string     // the main file
	files []hostFile // where each host came from, in order
	// data holds the files read by this load; a message about another
	// file reads it again for its line.
	data  map[string][]byte
	trees map[string]*yaml.Node
	errs  []error
	warns []string
	// zones caches time zone lookups: a fleet shares a handful.
	zones map[string]bool
	// known are the live objects the file may reference (Known); live,
	// when set, names the one live object being checked (CheckHost).
	known Known
	live  string
	// fileProfiles are the profiles a host may use that the config being
	// checked does not hold: the file's when a live host is checked
	// alone, live ones (Known.ProfileSpecs) for either; a host's login is
	// the built-in kickstart's when theirs is.
	fileProfiles map[string]*Profile
}

// errf records a problem at the YAML node addressed by path (map keys and
// sequence indexes), naming the file, line and field so the operator can
// find it. A host's path is in the file it came from.
func (v *validator) errf(path []any, format string, args ...any) {
	if v.live != "" {
		if len(path) > 0 && (path[0] == "hosts" || path[0] == "profiles" || path[0] == "distros") {
			v.errs = append(v.errs, liveError(v.live, path, fmt.Sprintf(format, args...)))
		}
		return // the rest of the file is not the live object's to answer for
	}
	file, line := v.file, 0
	if len(path) > 1 && path[0] == "hosts" {
		if i, ok := path[1].(int); ok {
			f, j := v.host(i)
			file = f.path
			path = append([]any{"hosts", j}, path[2:]...)
			line = int(f.lines[j])
		}
	}
	if l := v.line(file, path); l > 0 {
		line = l
	}
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		v.errs = append(v.errs, fmt.Errorf("%s:%d: %s: %s", file, line, fieldName(path), msg))
	} else {
		v.errs = append(v.errs, fmt.Errorf("%s: %s: %s", file, fieldName(path), msg))
	}
}

// host finds which file host i of the config came from, and its index there.
func (v *validator) host(i int) (*hostFile, int) {
	for k := range v.files {
		if i < len(v.files[k].hosts) {
			return &v.files[k], i
		}
		i -= len(v.files[k].hosts)
	}
	panic(fmt.Sprintf("inventory: host %d beyond the files", i))
}

// at names where host i is declared: file:line.
func (v *validator) at(i int) string {
	f, j := v.host(i)
	return fmt.Sprintf("%s:%d", f.path, f.lines[j])
}

// line finds the line of the node addressed by path in file; 0 if the file
// cannot be parsed. Files that validate never get here: the tree is only
// parsed for a message.
func (v *validator) line(file string, path []any) int {
	n, ok := v.trees[file]
	if !ok {
		data, found := v.data[file]
		if !found {
			data, _ = os.ReadFile(file)
		}
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) == nil {
			n = &doc
		}
		if v.trees == nil {
			v.trees = map[string]*yaml.Node{}
		}
		v.trees[file] = n
	}
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
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

	profiles := map[string]*Profile{}
	for i := range c.Profiles {
		p := &c.Profiles[i]
		at := func(f string) []any { return []any{"profiles", i, f} }
		switch {
		case p.Name == "":
			v.errf(at("name"), "missing")
		case profiles[p.Name] != nil:
			v.errf(at("name"), "duplicate profile %q", p.Name)
		}
		profiles[p.Name] = p
		if p.Kickstart == "" {
			for _, pr := range checkLoginVars(p.Vars) {
				v.errf([]any{"profiles", i, "vars", pr.Var}, "%s", pr.Msg)
			}
		}
		if !distros[p.Distro] && !v.known.Distros[p.Distro] {
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

	locked := map[string]int{} // hosts refused per profile for having no login
	names := make(map[string]int, len(c.Hosts))
	macs := make(map[string]int, len(c.Hosts))
	uuids, addrs := map[string]int{}, make(map[netip.Addr]int, len(c.Hosts))
	for i := range c.Hosts {
		h := &c.Hosts[i]
		at := func(f ...any) []any { return append([]any{"hosts", i}, f...) }
		switch {
		case h.Name == "":
			v.errf(at("name"), "missing")
		case !hostnameRE.MatchString(h.Name):
			v.errf(at("name"), "%q is not a valid host name", h.Name)
		}
		if j, dup := names[h.Name]; dup && h.Name != "" {
			v.errf(at("name"), "duplicate host %q (also at %s)", h.Name, v.at(j))
		}
		names[h.Name] = i
		for j, m := range h.MACs {
			n := NormalMAC(m)
			if n == "" {
				v.errf(at("macs", j), "%q is not a MAC address", m)
				continue
			}
			if other, dup := macs[n]; dup {
				v.errf(at("macs", j), "MAC %s is also used by host %s (%s)", n, c.Hosts[other].Name, v.at(other))
			}
			macs[n] = i
		}
		if h.UUID != "" {
			if !uuidRE.MatchString(h.UUID) {
				v.errf(at("uuid"), "%q is not a UUID", h.UUID)
			} else if other, dup := uuids[h.UUID]; dup {
				v.errf(at("uuid"), "UUID %s is also used by host %s (%s)", h.UUID, c.Hosts[other].Name, v.at(other))
			}
			uuids[h.UUID] = i
		}
		// Paths are built only for a problem: this loop runs over
		// every host of a 100,000-host inventory at each reload.
		for _, f := range [...]struct {
			field, addr string
			family      int
		}{{"ipv4", h.IPv4, 4}, {"ipv6", h.IPv6, 6}} {
			if msg := v.checkAddr(f.addr, f.family, c.Hosts, i, addrs); msg != "" {
				v.errf(at(f.field), "%s", msg)
			}
		}
		for _, f := range [...]struct {
			field, addr string
			family      int
		}{{"gateway4", h.Gateway4, 4}, {"gateway6", h.Gateway6, 6}} {
			if msg := ipProblem(f.addr, f.family); msg != "" {
				v.errf(at(f.field), "%s", msg)
			}
		}
		if h.Gateway4 != "" && h.IPv4 == "" {
			v.errf(at("gateway4"), "set without ipv4")
		}
		if h.Gateway6 != "" && h.IPv6 == "" {
			v.errf(at("gateway6"), "set without ipv6")
		}
		for j, ns := range h.Nameservers {
			// Rendered into nameserver= and network --nameserver, where
			// a malformed one fails the installer's DNS, not this load.
			if a, err := netip.ParseAddr(ns); err != nil || a.Zone() != "" {
				v.errf(at("nameservers", j), "%q is not an IP address such as 192.0.2.53 or 2001:db8::53", ns)
			}
		}
		if msg := v.checkGateway(h.IPv4, h.Gateway4, 4); msg != "" {
			v.errf(at("gateway4"), "%s", msg)
		}
		if msg := v.checkGateway(h.IPv6, h.Gateway6, 6); msg != "" {
			v.errf(at("gateway6"), "%s", msg)
		}
		if h.Timezone != "" && !v.knownZone(h.Timezone) {
			v.errf(at("timezone"), "unknown time zone %q: want a tz database name such as UTC or Europe/Berlin", h.Timezone)
		}
		if h.Interface != "" {
			if err := CheckInterfaceName(h.Interface); err != nil {
				v.errf(at("interface"), "%v", err)
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
		p := profiles[h.Profile]
		if h.Profile == "" {
			v.errf(at("profile"), "missing")
		} else if p == nil && !v.known.Profiles[h.Profile] {
			v.errf(at("profile"), "unknown profile %q", h.Profile)
		}
		if p == nil {
			p = v.fileProfiles[h.Profile]
		}
		if p != nil && p.Kickstart == "" {
			v.checkLogin(at("vars"), h, p, locked)
		}
		if h.BMC != nil {
			v.checkBMC(at(), h.BMC, c.Path)
		}
		if len(h.MACs) == 0 && h.UUID == "" && !slices.ContainsFunc(c.DHCP6.DUIDs, func(r DUIDReservation) bool { return r.Host == h.Name }) {
			v.errf(at("macs"), "host %s has neither macs nor uuid nor a dhcp6.duids reservation, so no machine can be matched to it", h.Name)
		}
	}

	for i, p := range c.Profiles {
		if n := locked[p.Name] - maxLockedReported; n > 0 {
			v.errf([]any{"profiles", i, "vars"}, "and %d more hosts of profile %s nobody could log into: set vars.rootpw or vars.ssh_keys here", n, p.Name)
		}
	}
	v.checkDHCP(&c.DHCP)
	v.checkDHCP6(&c.DHCP6, c.Hosts)
	if _, _, err := splitHostPort(c.Syslog.Listen); err != nil {
		v.errf([]any{"syslog", "listen"}, "%v", err)
	}

	switch c.Menu.Unknown {
	case "menu", "ignore", MenuDiscover:
	default:
		v.errf([]any{"menu", "unknown"}, "want menu, ignore or discover, not %q", c.Menu.Unknown)
	}
	v.checkDiscovery(&c.Discovery, profiles)
	for j, n := range c.Menu.Hosts {
		if _, ok := names[n]; !ok {
			v.errf([]any{"menu", "hosts", j}, "unknown host %q", n)
		}
	}
}

// checkAddr validates a host's address/prefix of the given family and
// rejects a second host on the same address, which would split DHCP and
// DNS. It returns the problem, so the field's path is only built for one.
func (v *validator) checkAddr(s string, family int, hosts []Host, i int, seen map[netip.Addr]int) string {
	if s == "" {
		return ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Sprintf("%q is not an address/prefix such as %s", s, map[int]string{4: "192.0.2.10/24", 6: "2001:db8::10/64"}[family])
	}
	if (family == 4) != p.Addr().Is4() {
		return fmt.Sprintf("%q is not an IPv%d address", s, family)
	}
	other, dup := seen[p.Addr()]
	seen[p.Addr()] = i
	if dup {
		return fmt.Sprintf("address %s is also used by host %s (%s)", p.Addr(), hosts[other].Name, v.at(other))
	}
	return ""
}

func (v *validator) checkInterfaces(path []any, names []string) {
	for j, n := range names {
		if err := CheckInterfaceName(n); err != nil {
			v.errf(append(slices.Clip(path), j), "%v", err)
		}
	}
}

func (v *validator) checkIP(path []any, s string, family int) {
	if msg := ipProblem(s, family); msg != "" {
		v.errf(path, "%s", msg)
	}
}

func ipProblem(s string, family int) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not an IP address", s)
	case family == 4 && !a.Is4(), family == 6 && !a.Is6():
		return fmt.Sprintf("%q is not an IPv%d address", s, family)
	}
	return ""
}

// maxLockedReported is how many hosts of one profile are named for
// having no login before the rest are counted.
const maxLockedReported = 10

// checkLogin checks a host whose kickstart is the built-in one: its own
// login variables' form (the profile's are checked at the profile), and
// that the host and profile together leave a way to log in.
func (v *validator) checkLogin(at []any, h *Host, p *Profile, locked map[string]int) {
	// This runs for every host at every reload: the profile's vars are
	// checked once, at the profile, and no merged map is built.
	if len(h.Vars) > 0 {
		for _, pr := range checkLoginVars(h.Vars) {
			v.errf(append(slices.Clip(at), pr.Var), "%s", pr.Msg)
		}
	}
	if h.CanLogIn(p) {
		return
	}
	// A profile without a login makes every host of it an error: the
	// first few are named, then the count.
	if locked[p.Name]++; locked[p.Name] <= maxLockedReported {
		v.errf(at, "%s (profile %s names no kickstart)", lockedMsg, p.Name)
	}
}

// checkGateway says what is wrong with a host's gateway of a family given
// its address/prefix ("" when nothing is, or either is unset or already
// reported as malformed). A gateway outside the prefix is unreachable
// from the installer: NetworkManager and dracut add no route to it.
func (v *validator) checkGateway(addr, gw string, family int) string {
	p, err1 := netip.ParsePrefix(addr)
	g, err2 := netip.ParseAddr(gw)
	if addr == "" || gw == "" || err1 != nil || err2 != nil || p.Addr().Is4() != g.Is4() {
		return ""
	}
	switch {
	case g == p.Addr():
		return fmt.Sprintf("%s is the host's own address", g)
	case family == 6 && g.IsLinkLocalUnicast():
		return "" // a router's link-local address: on the link by definition
	case !p.Masked().Contains(g):
		return fmt.Sprintf("%s is outside the host's network %s (ipv%d %s), so the installer cannot reach it", g, p.Masked(), family, addr)
	case family == 4 && p.Bits() < 31 && (g == p.Masked().Addr() || g == lastAddr(p)):
		return fmt.Sprintf("%s is the network or broadcast address of %s", g, p.Masked())
	}
	return ""
}

// lastAddr is the highest address of an IPv4 prefix (its broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// knownZone says whether tz names a zone of the tz database. Names that
// only a system's zoneinfo directory has (posix/, right/, localtime) and
// Go's "Local" are not zones an installer knows.
func (v *validator) knownZone(tz string) bool {
	ok, seen := v.zones[tz]
	if seen {
		return ok
	}
	ok = validZone(tz)
	if v.zones == nil {
		v.zones = map[string]bool{}
	}
	v.zones[tz] = ok
	return ok
}

func validZone(tz string) bool {
	switch {
	case tz == "Local", tz == "localtime", tz == "posixrules", tz == "Factory",
		strings.HasPrefix(tz, "posix/"), strings.HasPrefix(tz, "right/"),
		strings.ContainsAny(tz, " \t\n\\"), strings.HasSuffix(tz, ".tab"):
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}

// CheckInterfaceName applies the kernel's rules for a network interface
// name (dev_valid_name): 1 to 15 bytes, no '/', ':' or whitespace, and
// not "." or "..". A name that breaks them can name no interface, and in
// ip= or network --device it breaks the installer's command line.
func CheckInterfaceName(name string) error {
	switch {
	case name == "":
		return errors.New("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is %d bytes; the kernel allows at most 15", name, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed by the kernel", name)
	case strings.ContainsAny(name, "/:"):
		return fmt.Errorf("interface name %q contains '/' or ':', which the kernel does not allow", name)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0 || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("interface name %q contains whitespace, which the kernel does not allow", name)
	}
	return nil
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
	v.checkInterfaces([]any{"dhcp", "interfaces"}, d.Interfaces)
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
