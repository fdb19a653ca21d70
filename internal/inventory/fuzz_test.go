package inventory

import (
	"fmt"
	"reflect"
	"testing"
)

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

// FuzzChunkedParse: cutting the hosts block into chunks never changes what
// a file means or what its errors say.
func FuzzChunkedParse(f *testing.F) {
	f.Add([]byte(manyHosts(6, plainHost)))
	f.Add([]byte("hosts:\n- name: a\n  vars: {x: \"\n- y\"}\n- name: b\nmenu: {}\n"))
	f.Add([]byte("hosts:\n  - &a {name: a}\n  - *a\n  - name: c\n    <<: *a\n"))
	f.Add([]byte("hosts:\n  - name: a\n    macs: |\n  - b\n  - name: c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errW := decodeFile("f.yaml", data, false, 0, nil)
		chunked, errC := decodeFile("f.yaml", data, false, 8, nil)
		if fmt.Sprint(errW) != fmt.Sprint(errC) {
			t.Fatalf("errors differ:\nwhole:   %v\nchunked: %v", errW, errC)
		}
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("results differ:\nwhole:   %+v\nchunked: %+v", whole, chunked)
		}
	})
}
