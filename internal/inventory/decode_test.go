package inventory

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// manyHosts is a main file whose hosts block is followed by more settings,
// so lines after the block must come out where they are in the file.
func manyHosts(n int, item func(i int) string) string {
	var b strings.Builder
	b.WriteString("---\n# inventory\nserver:\n  address_v4: 192.0.2.1\ndistros:\n  - name: el9\n    release: rhel9\n    kernel: vmlinuz\n    initrd: [initrd.img]\nhosts:\n  # the fleet\n")
	for i := range n {
		b.WriteString(item(i))
	}
	b.WriteString("# end of hosts\nprofiles:\n  - name: p\n    distro: el9\n    vars: {ssh_keys: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com\"}\nmenu:\n  title: x\n")
	return b.String()
}

func plainHost(i int) string {
	return fmt.Sprintf("  - name: h%d.example.com\n    macs: [\"52:54:00:00:%02x:%02x\"]\n    ipv4: 192.0.2.%d/24\n    profile: p\n\n", i, i/256, i%256, i%250+2)
}

// Cutting the hosts block into chunks must never change what a file
// means, its lines, or its errors: every shape here, parsed whole and in
// chunks of a few items, gives the same result.
func TestChunkedParseMatchesWhole(t *testing.T) {
	cases := map[string]string{
		"plain": manyHosts(40, plainHost),
		"every field": manyHosts(20, func(i int) string {
			return plainHost(i) + fmt.Sprintf("    uuid: 4C4C4544-0000-0000-0000-%012d\n    gateway4: 192.0.2.1\n    ipv6: 2001:db8::%x/64\n    nameservers: [192.0.2.53, ~]\n    ntp: []\n    timezone: UTC\n    interface: eth0\n    platform: kvm\n    netboot: install\n    vars:\n      role: web\n      n: 0%d\n      text: |\n        - not an item\n        line two\n", i, i+1, i)
		}),
		"flow items": manyHosts(30, func(i int) string {
			return fmt.Sprintf("  - {name: f%d, macs: [\"52:54:00:01:00:%02x\"], profile: p}\n", i, i)
		}),
		"indent 0": manyHosts(30, func(i int) string {
			return fmt.Sprintf("- name: z%d\n  macs: [\"52:54:00:02:00:%02x\"]\n  profile: p\n", i, i)
		}),
		"anchors across chunks": manyHosts(30, func(i int) string {
			if i == 0 {
				return "  - &base\n    name: h0\n    macs: [\"52:54:00:00:00:00\"]\n    profile: p\n"
			}
			return fmt.Sprintf("  - <<: *base\n    name: h%d\n    macs: [\"52:54:00:00:00:%02x\"]\n", i, i)
		}),
		"quoted across item lines": manyHosts(30, func(i int) string {
			if i == 7 {
				return "  - name: \"q7\n  - x\"\n    profile: p\n    macs: [\"52:54:00:00:09:09\"]\n"
			}
			return plainHost(i)
		}),
		"tags and nulls": manyHosts(30, func(i int) string {
			return plainHost(i) + "    timezone: !!str 0755\n    interface: null\n    vars: ~\n"
		}),
		"crlf":            strings.ReplaceAll(manyHosts(30, plainHost), "\n", "\r\n"),
		"unknown fields":  manyHosts(30, func(i int) string { return plainHost(i) + "    colour: blue\n" }),
		"bad type":        manyHosts(30, func(i int) string { return plainHost(i) + "    macs: 5\n" }),
		"repeated key":    manyHosts(30, func(i int) string { return plainHost(i) + "    profile: p\n" }),
		"syntax error":    manyHosts(30, func(i int) string { return plainHost(i) + "    vars: {a: [}\n" }),
		"two hosts keys":  manyHosts(30, plainHost) + "hosts:\n  - name: again\n",
		"second document": manyHosts(30, plainHost) + "---\nhosts: []\n",
		"unknown at top":  manyHosts(30, plainHost) + "colour: blue\n",
		"repeated at top": manyHosts(30, plainHost) + "menu:\n  title: y\n",
	}
	// These must take the parallel path, not fall back to a whole parse.
	chunks := map[string]bool{"plain": true, "every field": true, "flow items": true, "indent 0": true,
		"tags and nulls": true, "crlf": true, "unknown fields": true, "unknown at top": true}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if chunks[name] {
				b, ok := findHostsBlock([]byte(src))
				if !ok {
					t.Fatal("no hosts block found")
				}
				if _, err := decodeChunked("inv.yaml", []byte(src), b, false, 200, nil); err != nil {
					t.Fatalf("chunked parse fell back: %v", err)
				}
			}
			whole, errW := decodeFile("inv.yaml", []byte(src), false, 0, nil)
			chunked, errC := decodeFile("inv.yaml", []byte(src), false, 200, nil)
			if wantErr := strings.Contains("syntax error|two hosts keys|repeated at top", name); (errW != nil) != wantErr {
				t.Fatalf("whole parse: err = %v", errW)
			}
			// A value of the wrong type is a problem reported with the
			// file's others, not an error that hides them.
			if wantProblem := strings.Contains("bad type|repeated key", name); wantProblem && (errW != nil || len(whole.unknown) == 0) {
				t.Fatalf("whole parse: err = %v, problems %v", errW, whole)
			}
			if fmt.Sprint(errW) != fmt.Sprint(errC) {
				t.Fatalf("errors differ:\nwhole:   %v\nchunked: %v", errW, errC)
			}
			if !reflect.DeepEqual(whole, chunked) {
				t.Fatalf("results differ:\nwhole:   %+v\nchunked: %+v", whole, chunked)
			}
		})
	}
}

// The cut itself must find the items, or the parallel parse never runs.
func TestHostsBlockFound(t *testing.T) {
	src := manyHosts(3, plainHost)
	b, ok := findHostsBlock([]byte(src))
	if !ok || len(b.items) != 3 || b.keyLine != 10 || b.itemLines[0] != 12 || b.itemLines[2] != 22 {
		t.Fatalf("block = %+v, %v", b, ok)
	}
	for _, s := range []string{"hosts: []\n", "hosts:\n\tname: a\n", "a: 1\n---\nhosts:\n  - name: b\n"} {
		if _, ok := findHostsBlock([]byte(s)); ok {
			t.Errorf("findHostsBlock(%q) cut a block", s)
		}
	}
}

// Messages from the chunked parse carry the host's line in the file.
func TestChunkedUnknownFieldLine(t *testing.T) {
	src := manyHosts(30, func(i int) string {
		if i == 25 {
			return plainHost(i) + "    colour: blue\n"
		}
		return plainHost(i)
	})
	pf, err := decodeFile("inv.yaml", []byte(src), false, 200, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Host 25 starts at line 12 + 25*5; colour follows its four lines and a blank.
	want := fmt.Sprintf("inv.yaml:%d: hosts[25].colour: unknown key \"colour\"", 12+25*5+5)
	if len(pf.unknown) != 1 || pf.unknown[0].Error() != want {
		t.Fatalf("unknown = %v, want %s", pf.unknown, want)
	}
}

// Equal must compare every field of Host, or a reload would miss an edit.
func TestHostEqualComparesEveryField(t *testing.T) {
	base := Host{Name: "a", MACs: []string{"x"}, Nameservers: []string{"x"}, NTP: []string{"x"}, Vars: map[string]string{"k": "v"}}
	rt := reflect.TypeFor[Host]()
	for i := range rt.NumField() {
		h := base
		h.MACs, h.Nameservers, h.NTP = []string{"x"}, []string{"x"}, []string{"x"}
		h.Vars = map[string]string{"k": "v"}
		f := reflect.ValueOf(&h).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "!")
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"y"}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"k": "w"}))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", rt.Field(i).Name, f.Kind())
		}
		if base.Equal(&h) {
			t.Errorf("Equal ignores field %s", rt.Field(i).Name)
		}
	}
	c := base
	if !base.Equal(&c) {
		t.Error("a host is not Equal to its copy")
	}
}
