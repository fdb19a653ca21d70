package inventory

import (
	"errors"
	"fmt"
	"maps"
)

// Known names the live objects (made through the CLI or the API and kept
// in the store) that the file's profiles and hosts may reference: a host
// in the file may use a profile that `distro import` registered.
type Known struct {
	Profiles map[string]bool
	Distros  map[string]bool
	// ProfileSpecs are the definitions of live profiles, where a check
	// needs more than the name: a host's login is checked against its
	// profile's kickstart and vars. A name missing here is not checked
	// for that.
	ProfileSpecs map[string]*Profile
}

// CheckHost validates a live host by the file's rules and with the file's
// messages, where "file:line" is the object ("host web1: ipv4: ..."). It
// fills in the defaults the file would (platform, netboot, MAC spelling).
// Names the host's profile may be are the file's and known's; a MAC,
// UUID or address shared with another host is the store's to refuse,
// which sees every host, live or not.
func (c *Config) CheckHost(h *Host, known Known) error {
	h.applyDefaults()
	x := c.liveScope(known)
	x.Hosts = []Host{*h}
	return x.checkLive("host "+h.Name, known, c.Profiles)
}

// CheckProfile validates a live profile as CheckHost does a host.
func (c *Config) CheckProfile(p *Profile, known Known) error {
	if p.Loader == "" {
		p.Loader = LoaderIPXE
	}
	x := c.liveScope(known)
	x.Profiles = []Profile{*p}
	return x.checkLive("profile "+p.Name, known, nil)
}

// CheckDistro validates a live distro as CheckHost does a host.
func (c *Config) CheckDistro(d *Distro) error {
	x := c.liveScope(Known{})
	x.Distros = []Distro{*d}
	return x.checkLive("distro "+d.Name, Known{}, nil)
}

// liveScope is a copy of the (valid) config holding none of the file's
// objects: a live object is checked on its own, against the names known.
func (c *Config) liveScope(known Known) *Config {
	x := *c
	x.Distros, x.Profiles, x.Hosts = nil, nil, nil
	x.Menu.Hosts, x.DHCP6.DUIDs = nil, nil
	x.Warnings, x.hostFiles = nil, nil
	x.applyDefaults()
	return &x
}

// checkLive checks c's one object. fileProfiles are the file's profiles,
// which a live host's login is checked against (the built-in kickstart's).
func (c *Config) checkLive(what string, known Known, fileProfiles []Profile) error {
	v := validator{live: what, known: known, files: []hostFile{{path: what, hosts: c.Hosts, lines: make([]int32, len(c.Hosts))}},
		fileProfiles: map[string]*Profile{}}
	maps.Copy(v.fileProfiles, known.ProfileSpecs)
	for i := range fileProfiles {
		v.fileProfiles[fileProfiles[i].Name] = &fileProfiles[i]
	}
	v.check(c)
	if len(v.errs) > 0 {
		return errors.Join(v.errs...)
	}
	return nil
}

// liveError is a live object's problem: the object, and the field without
// the list it would be in in a file (hosts[0].ipv4 is ipv4).
func liveError(what string, path []any, msg string) error {
	if len(path) >= 2 {
		path = path[2:]
	}
	if len(path) == 0 {
		return fmt.Errorf("%s: %s", what, msg)
	}
	return fmt.Errorf("%s: %s: %s", what, fieldName(path), msg)
}
