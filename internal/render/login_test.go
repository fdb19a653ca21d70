package render

import (
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
)

const (
	testHash = "$6$kickstandtest$5MS9oYuEhtNmSVDHCkrJI/DqZnbLIT/8EAaPqkN.4ywAIgaWBmTuZSsEv4Yys3y6iq.mc7wUFaTvVGsO537yn/"
	testKey1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com"
	testKey2 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV9U2W== admin"
)

// Issue 16 (item 2): the built-in kickstart wrote rootpw --lock and
// ignored vars.rootpw, so nobody could log into the machine. Now
// vars.rootpw, vars.user and vars.ssh_keys (host or profile) are written
// in each release's syntax, and the result passes lint for every release.
func TestDefaultKickstartLogins(t *testing.T) {
	cases := []struct {
		name        string
		host, prof  map[string]string
		want, wantN []string // lines present, absent
	}{
		{"rootpw", map[string]string{"rootpw": testHash}, nil,
			[]string{"rootpw --iscrypted " + testHash}, []string{"rootpw --lock", "user ", "sshkey", "NOPASSWD"}},
		{"root key", map[string]string{"ssh_keys": testKey1}, nil,
			[]string{"root"}, []string{"user ", "NOPASSWD"}},
		{"user with keys, no password", map[string]string{"user": "ops", "ssh_keys": testKey1 + "\n# old key\n\n" + testKey2 + "\n"}, nil,
			[]string{"user --name=ops --groups=wheel", "ops ALL=(ALL) NOPASSWD: ALL"}, []string{"rootpw --iscrypted $6"}},
		{"profile's hash, host's user and key", map[string]string{"user": "ops", "ssh_keys": testKey1}, map[string]string{"rootpw": testHash},
			[]string{"rootpw --iscrypted " + testHash, "user --name=ops --groups=wheel"}, []string{"NOPASSWD", "# old key"}},
	}
	for _, rel := range []string{"rhel6", "rhel7", "rhel8", "rhel9", "rhel10", "fedora40"} {
		for _, tc := range cases {
			t.Run(rel+"/"+tc.name, func(t *testing.T) {
				tgt := &boot.Target{
					Record:  &inventory.HostRecord{Host: inventory.Host{Name: "h1.example.com", IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1", Vars: tc.host}, Token: "T"},
					Profile: &inventory.Profile{Name: "p", Vars: tc.prof},
					Distro:  &inventory.Distro{Name: "d", Release: rel},
				}
				if len(inventory.CheckLogin(tgt.Record.TemplateVars(tgt.Profile))) != 0 {
					t.Fatalf("the inventory refuses this host: %v", inventory.CheckLogin(tgt.Record.TemplateVars(tgt.Profile)))
				}
				b, probs, err := Kickstart("", tgt, boot.Plan{BaseURL: "http://192.0.2.1:8080"})
				if err != nil {
					t.Fatal(err)
				}
				ks := string(b)
				if kickstart.HasErrors(probs, false) {
					t.Fatalf("fails lint for %s: %v\n%s", rel, kickstart.Errors(probs), ks)
				}
				for _, w := range tc.want {
					if !strings.Contains(ks, w) {
						t.Errorf("lacks %q:\n%s", w, ks)
					}
				}
				for _, w := range tc.wantN {
					if strings.Contains(ks, w) {
						t.Errorf("has %q:\n%s", w, ks)
					}
				}
				keys := inventory.LoginOf(tgt.Record.TemplateVars(tgt.Profile))
				for _, k := range keys.SSHKeys {
					sshkey := `sshkey --username=` + keys.KeyUser + ` "` + k + `"`
					modern := rel != "rhel6" && rel != "rhel7" && len(keys.SSHKeys) == 1
					if strings.Contains(ks, sshkey) != modern {
						t.Errorf("sshkey line for %s present=%v:\n%s", rel, !modern, ks)
					}
					if !modern && !strings.Contains(ks, "\n"+k+"\n") {
						t.Errorf("%%post lacks the key:\n%s", ks)
					}
				}
			})
		}
	}
}
