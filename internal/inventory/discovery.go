package inventory

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MenuDiscover is menu.unknown's third choice: an unknown machine that
// reaches iPXE reports what its firmware knows of it and waits to be
// assigned (internal/discovery).
const MenuDiscover = "discover"

// Discovery bounds and paces discovery of unknown machines. Everything an
// unknown machine can make kickstand store is bounded here.
type Discovery struct {
	// Poll is how often a waiting machine asks whether it was assigned;
	// each answer adds up to Jitter more, so a rack powered on at once
	// does not poll in step.
	Poll   Duration `yaml:"poll,omitempty" json:"poll,omitempty"`
	Jitter Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// MaxMachines caps how many discovered machines are kept.
	MaxMachines int `yaml:"max_machines,omitempty" json:"max_machines,omitempty"`
	// RefreshEvery is the per-MAC rate limit: a machine's report is
	// written at most once per this long (its polls are still answered).
	RefreshEvery Duration `yaml:"refresh_every,omitempty" json:"refresh_every,omitempty"`
	// StaleAfter is how long a machine that stopped polling keeps its
	// place; past the cap, stale machines make room for new ones.
	StaleAfter Duration `yaml:"stale_after,omitempty" json:"stale_after,omitempty"`
	// Rules assign matching machines without an operator. None by default.
	Rules []DiscoveryRule `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// DiscoveryRule assigns a discovered machine that matches every field set.
type DiscoveryRule struct {
	Serial    string `yaml:"serial,omitempty" json:"serial,omitempty"`
	Product   string `yaml:"product,omitempty" json:"product,omitempty"`
	MACPrefix string `yaml:"mac_prefix,omitempty" json:"mac_prefix,omitempty"`
	// Name is the new host's name; {serial}, {asset} and {mac} (12 hex
	// digits) are replaced by the machine's.
	Name    string `yaml:"name" json:"name"`
	Profile string `yaml:"profile" json:"profile"`
}

// Matches reports whether a machine with these facts matches the rule.
func (r DiscoveryRule) Matches(mac, serial, product string) bool {
	if r.Serial == "" && r.Product == "" && r.MACPrefix == "" {
		return false // a rule that matches everything is refused at load
	}
	return (r.Serial == "" || r.Serial == serial) && (r.Product == "" || r.Product == product) &&
		(r.MACPrefix == "" || strings.HasPrefix(mac, strings.ToLower(r.MACPrefix)))
}

// HostName is the rule's name for a machine, or "" when the result is not
// a valid host name (a serial with spaces, say).
func (r DiscoveryRule) HostName(mac, serial, asset string) string {
	n := strings.NewReplacer("{serial}", serial, "{asset}", asset, "{mac}", strings.ReplaceAll(mac, ":", "")).Replace(r.Name)
	n = strings.ToLower(n)
	if !hostnameRE.MatchString(n) {
		return ""
	}
	return n
}

func (d *Discovery) applyDefaults() {
	if d.Poll == 0 {
		d.Poll = Duration(10 * time.Second)
	}
	if d.Jitter == 0 {
		d.Jitter = d.Poll / 2
	}
	if d.MaxMachines == 0 {
		d.MaxMachines = 1000
	}
	if d.RefreshEvery == 0 {
		d.RefreshEvery = Duration(time.Minute)
	}
	if d.StaleAfter == 0 {
		d.StaleAfter = Duration(time.Hour)
	}
}

func (v *validator) checkDiscovery(d *Discovery, profiles map[string]*Profile) {
	at := func(p ...any) []any { return append([]any{"discovery"}, p...) }
	if d.Poll < Duration(time.Second) {
		v.errf(at("poll"), "%s is too short (at least 1s)", time.Duration(d.Poll))
	}
	if d.Jitter < 0 {
		v.errf(at("jitter"), "must not be negative")
	}
	if d.MaxMachines < 0 {
		v.errf(at("max_machines"), "must not be negative")
	}
	for i, r := range d.Rules {
		if r.Serial == "" && r.Product == "" && r.MACPrefix == "" {
			v.errf(at("rules", i), "matches every machine: set serial, product or mac_prefix")
		}
		if r.MACPrefix != "" && !macPrefixOK(r.MACPrefix) {
			v.errf(at("rules", i, "mac_prefix"), "%q is not a MAC prefix like 52:54:00", r.MACPrefix)
		}
		if r.Name == "" {
			v.errf(at("rules", i, "name"), "missing")
		} else if r.HostName("000000000000", "x", "x") == "" && !strings.Contains(r.Name, "{") {
			v.errf(at("rules", i, "name"), "%q is not a host name", r.Name)
		}
		if r.Profile == "" {
			v.errf(at("rules", i, "profile"), "missing")
		} else if profiles[r.Profile] == nil && !v.known.Profiles[r.Profile] {
			v.errf(at("rules", i, "profile"), "unknown profile %q", r.Profile)
		}
	}
}

func macPrefixOK(p string) bool {
	parts := strings.Split(p, ":")
	if len(parts) == 0 || len(parts) > 6 {
		return false
	}
	for _, x := range parts {
		if len(x) != 2 || strings.Trim(strings.ToLower(x), "0123456789abcdef") != "" {
			return false
		}
	}
	return true
}

// BMC is how kickstand reaches a host's baseboard management controller.
// The password is never in the inventory: it is read from PasswordFile,
// which must not be readable by group or others.
type BMC struct {
	Driver  string `yaml:"driver" json:"driver"`   // ipmi
	Address string `yaml:"address" json:"address"` // host or host:port (623)
	// User and PasswordFile are kept in the store's copy of the host (so
	// a reinstall finds them) but no view (API, UI, CLI) shows them.
	User         string `yaml:"user,omitempty" json:"user,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
}

// Equal reports whether two BMC settings are alike.
func (b *BMC) Equal(o *BMC) bool {
	if b == nil || o == nil {
		return b == o
	}
	return *b == *o
}

func (v *validator) checkBMC(path []any, b *BMC, base string) {
	at := func(p string) []any { return append(append([]any(nil), path...), "bmc", p) }
	if b.Driver != "ipmi" {
		v.errf(at("driver"), "unknown driver %q (want ipmi)", b.Driver)
	}
	if b.Address == "" {
		v.errf(at("address"), "missing")
	} else if h, _, err := net.SplitHostPort(b.Address); err == nil && h == "" {
		v.errf(at("address"), "%q has no host", b.Address)
	}
	if b.PasswordFile == "" {
		v.errf(at("password_file"), "missing: the BMC password is read from a file only kickstand can read")
		return
	}
	if msg := PasswordFileProblem(b.PasswordPath(base)); msg != "" {
		v.errf(at("password_file"), "%s", msg)
	}
}

// PasswordPath is the password file's path; a relative one is relative to
// the main config file (cfgPath).
func (b *BMC) PasswordPath(cfgPath string) string {
	if filepath.IsAbs(b.PasswordFile) || cfgPath == "" {
		return b.PasswordFile
	}
	return filepath.Join(filepath.Dir(cfgPath), b.PasswordFile)
}

// PasswordFileProblem says what is wrong with a credentials file, or "":
// it must exist and be readable by its owner only.
func PasswordFileProblem(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Sprintf("%s has mode %04o: a password file must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	return ""
}

// ValidHostName reports whether s may name a host (the file's rule).
func ValidHostName(s string) bool { return hostnameRE.MatchString(s) }

// ValidUUID reports whether s is a UUID as the inventory spells it.
func ValidUUID(s string) bool { return uuidRE.MatchString(s) }
