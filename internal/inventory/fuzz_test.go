package inventory

import "testing"

// FuzzParse: any bytes as a config file give a config or an error, never a
// panic, and a config that parses names only valid hosts.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("hosts: [{name: a, macs: [zz], profile: p}]\n"))
	f.Add([]byte("dhcp: {enabled: true, interfaces: [x], subnets: [{subnet: 192.0.2.0/24, pool: 192.0.2.9-192.0.2.1}]}\n"))
	f.Add([]byte("server: {http: \":99999\"}\n"))
	f.Add([]byte("menu: {hosts: [nope]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, h := range c.Hosts {
			if !hostnameRE.MatchString(h.Name) {
				t.Fatalf("accepted host name %q", h.Name)
			}
			for _, m := range h.MACs {
				if NormalMAC(m) != m {
					t.Fatalf("accepted MAC %q", m)
				}
			}
		}
	})
}
