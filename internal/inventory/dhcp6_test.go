package inventory

import (
	"strings"
	"testing"
	"time"
)

func TestDHCP6Config(t *testing.T) {
	off, err := Parse("inv.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if off.DHCP6.Enabled || off.DHCP6.Workers != 64 {
		t.Errorf("defaults: %+v", off.DHCP6)
	}
	on, err := Parse("inv.yaml", []byte(base+`
dhcp6:
  enabled: true
  interfaces: [br0]
  duids:
    - {duid: "00:03:00:01:52:54:00:00:00:0B", host: a.example.com}
  subnets:
    - prefix: 2001:db8::/64
      pool: 2001:db8::1000-2001:db8::1fff
      dns: [2001:db8::53]
      domain_search: [example.com]
      preferred_lifetime: 10m
`))
	if err != nil {
		t.Fatal(err)
	}
	s := on.DHCP6.Subnets[0]
	if time.Duration(s.PreferredLifetime) != 10*time.Minute || time.Duration(s.ValidLifetime) != 2*time.Hour {
		t.Errorf("lifetimes: %+v", s)
	}
	if NormalDUID(on.DHCP6.DUIDs[0].DUID) != "0003000152540000000b" {
		t.Errorf("NormalDUID = %q", NormalDUID(on.DHCP6.DUIDs[0].DUID))
	}

	for _, tc := range []struct{ yaml, want string }{
		{"dhcp6: {enabled: true, subnets: [{prefix: 2001:db8::/64}]}", "dhcp6.interfaces: dhcp6 is enabled but names no interfaces"},
		{"dhcp6: {enabled: true, interfaces: [br0]}", "dhcp6.subnets: dhcp6 is enabled but has no subnet"},
		{"dhcp6: {subnets: [{prefix: 192.0.2.0/24}]}", `dhcp6.subnets[0].prefix: "192.0.2.0/24" is not an IPv6 network`},
		{"dhcp6: {subnets: [{prefix: 2001:db8::/64, pool: 2001:db8:1::1-2001:db8:1::9}]}", "is not inside prefix 2001:db8::/64"},
		{"dhcp6: {subnets: [{prefix: 2001:db8::/64, pool: 2001:db8::9-2001:db8::1}]}", "want first-last IPv6 addresses"},
		{"dhcp6: {subnets: [{prefix: 2001:db8::/64, dns: [192.0.2.53]}]}", `dhcp6.subnets[0].dns[0]: "192.0.2.53" is not an IPv6 address`},
		{"dhcp6: {subnets: [{prefix: 2001:db8::/64, preferred_lifetime: 2h, valid_lifetime: 1h}]}", "must be at least preferred_lifetime"},
		{"dhcp6: {duids: [{duid: zz, host: a.example.com}]}", "dhcp6.duids[0].duid: \"zz\" is not a DUID"},
		{"dhcp6: {duids: [{duid: '000300015254', host: nobody}]}", `dhcp6.duids[0].host: unknown host "nobody"`},
	} {
		_, err := Parse("inv.yaml", []byte(base+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
