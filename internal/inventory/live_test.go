package inventory

import (
	"path/filepath"
	"strings"
	"testing"
)

// A host in the file may use a live profile (one `distro import`
// registered): issue 16 item 1 reported
// `lab-imp.yaml:119: hosts[5].profile: unknown profile "rocky9.4-imp"`.
func TestFileHostMayUseLiveProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lab-imp.yaml")
	write(t, path, mainFile+"  - name: imp.example.com\n    macs: [\"52:54:00:00:00:02\"]\n    profile: rocky9.4-imp\n")

	_, err := (&Loader{Path: path}).Load(false)
	if err == nil || !strings.Contains(err.Error(), `lab-imp.yaml:18: hosts[1].profile: unknown profile "rocky9.4-imp"`) {
		t.Fatalf("without the live profile: err = %v, want the unknown profile named at its line", err)
	}
	var saw *Config
	l := &Loader{Path: path, Known: func(c *Config) (Known, error) {
		saw = c
		return Known{Profiles: map[string]bool{"rocky9.4-imp": true}}, nil
	}}
	c, err := l.Load(false)
	if err != nil {
		t.Fatalf("with the live profile: %v", err)
	}
	if saw == nil || saw.Server.AddressV4 != "192.0.2.1" || c.Hosts[1].Profile != "rocky9.4-imp" {
		t.Errorf("Known was not given the file's config, or the host lost its profile")
	}

	// A live distro may be a file profile's.
	write(t, path, strings.Replace(mainFile, "distro: el9", "distro: imported", 1))
	if _, err := (&Loader{Path: path}).Load(true); err == nil || !strings.Contains(err.Error(), `unknown distro "imported"`) {
		t.Fatalf("err = %v, want unknown distro", err)
	}
	l = &Loader{Path: path, Known: func(*Config) (Known, error) { return Known{Distros: map[string]bool{"imported": true}}, nil }}
	if _, err := l.Load(true); err != nil {
		t.Fatal(err)
	}
}

// Live objects get the file's checks and messages, named by the object
// rather than a file and line.
func TestCheckLiveObjects(t *testing.T) {
	c, err := Parse("k.yaml", []byte(mainFile))
	if err != nil {
		t.Fatal(err)
	}
	h := Host{Name: "web1", MACs: []string{"52-54-00-AA-BB-CC"}, IPv4: "192.0.2.300/24", Profile: "nope"}
	err = c.CheckHost(&h, Known{})
	for _, want := range []string{`host web1: ipv4: "192.0.2.300/24" is not an address/prefix`, `host web1: profile: unknown profile "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckHost: err = %v, want %q", err, want)
		}
	}
	h = Host{Name: "web1", MACs: []string{"52-54-00-AA-BB-CC"}, Profile: "live-p"}
	if err := c.CheckHost(&h, Known{Profiles: map[string]bool{"live-p": true}}); err != nil {
		t.Fatal(err)
	}
	if h.MACs[0] != "52:54:00:aa:bb:cc" || h.Netboot != StateLocal || h.Platform != PlatformBaremetal {
		t.Errorf("defaults not applied as the file would: %+v", h)
	}
	if err := c.CheckHost(&Host{Name: "bad name", Profile: "p"}, Known{Profiles: map[string]bool{"p": true}}); err == nil ||
		!strings.Contains(err.Error(), `host bad name: name: "bad name" is not a valid host name`) ||
		!strings.Contains(err.Error(), "host bad name: macs: host bad name has neither macs nor uuid") {
		t.Errorf("err = %v", err)
	}

	p := Profile{Name: "p2", Distro: "el9", Loader: "floppy"}
	if err := c.CheckProfile(&p, Known{Distros: map[string]bool{"el9": true}}); err == nil || err.Error() != `profile p2: loader: unknown loader "floppy" (want ipxe, grub, pxelinux or shim)` {
		t.Errorf("CheckProfile: %v", err)
	}
	p = Profile{Name: "p2", Distro: "gone"}
	if err := c.CheckProfile(&p, Known{}); err == nil || err.Error() != `profile p2: distro: unknown distro "gone"` {
		t.Errorf("CheckProfile: %v", err)
	}
	if err := c.CheckDistro(&Distro{Name: "d", Release: "rhel9", Kernel: "../vmlinuz", Initrds: []string{"i"}}); err == nil ||
		err.Error() != `distro d: kernel: "../vmlinuz" must be a path inside the tree (no .., not absolute)` {
		t.Errorf("CheckDistro: %v", err)
	}
}

// A live object answers for itself only, whatever the config around it.
func TestCheckLiveIgnoresTheRest(t *testing.T) {
	var c Config // not even defaulted
	h := Host{Name: "web1", MACs: []string{"52:54:00:aa:bb:cc"}, Profile: "p"}
	if err := c.CheckHost(&h, Known{Profiles: map[string]bool{"p": true}}); err != nil {
		t.Fatal(err)
	}
}

// A live host on a file profile that names no kickstart gets the
// built-in one, so it is refused, as a file host would be, when nobody
// could log into it.
func TestLiveHostLogin(t *testing.T) {
	src := strings.Replace(mainFile, "    macs: [\"52:54:00:00:00:01\"]\n", "    macs: [\"52:54:00:00:00:01\"]\n    vars: {rootpw: \"$6$kickstandtest$5MS9oYuEhtNmSVDHCkrJI/DqZnbLIT/8EAaPqkN.4ywAIgaWBmTuZSsEv4Yys3y6iq.mc7wUFaTvVGsO537yn/\"}\n", 1)
	src = strings.Replace(src, "profiles:\n", "profiles:\n  - name: bare\n    distro: el9\n", 1)
	c, err := Parse("inv.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	known := Known{Profiles: map[string]bool{"bare": true, "p": true}}
	h := Host{Name: "live1", MACs: []string{"52:54:00:00:09:01"}, Profile: "bare"}
	if err := c.CheckHost(&h, known); err == nil || !strings.Contains(err.Error(), "host live1: vars: nobody could log into the installed machine") {
		t.Fatalf("err = %v", err)
	}
	h.Vars = map[string]string{"ssh_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com"}
	if err := c.CheckHost(&h, known); err != nil {
		t.Fatalf("with a key: %v", err)
	}
	h.Vars, h.Profile = nil, "p" // the profile's key is the host's
	if err := c.CheckHost(&h, known); err != nil {
		t.Fatalf("on a profile with a key: %v", err)
	}
}

// A host on a live profile that names no kickstart gets the built-in one:
// its login is checked against that profile, in the file and live.
func TestLoginOnLiveProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lab-imp.yaml")
	write(t, path, strings.Replace(mainFile, "    profile: p\n", "    profile: imp\n", 1))
	bare := &Profile{Name: "imp", Distro: "el9", Loader: LoaderIPXE}
	known := Known{Profiles: map[string]bool{"imp": true}, ProfileSpecs: map[string]*Profile{"imp": bare}}
	l := &Loader{Path: path, Known: func(*Config) (Known, error) { return known, nil }}
	_, err := l.Load(false)
	if err == nil || !strings.Contains(err.Error(), "lab-imp.yaml:13: hosts[0].vars: nobody could log into the installed machine") ||
		!strings.Contains(err.Error(), "(profile imp names no kickstart)") {
		t.Fatalf("file host on a bare live profile: %v", err)
	}
	bare.Vars = map[string]string{"ssh_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com"}
	c, err := l.Load(true)
	if err != nil {
		t.Fatalf("with the profile's key: %v", err)
	}
	bare.Vars = nil
	h := Host{Name: "live1", MACs: []string{"52:54:00:00:09:01"}, Profile: "imp"}
	if err := c.CheckHost(&h, known); err == nil || !strings.Contains(err.Error(), "host live1: vars: nobody could log into the installed machine") {
		t.Errorf("live host on a bare live profile: %v", err)
	}
	bare.Kickstart = "own.ks" // a template of the operator's own is theirs
	if err := c.CheckHost(&h, known); err != nil {
		t.Errorf("live host on a live profile with its own kickstart: %v", err)
	}
}
