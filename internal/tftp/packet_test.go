package tftp

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		in   string
		want request
		err  bool
	}{
		{"\x00\x01pxelinux.0\x00octet\x00", request{op: opRRQ, filename: "pxelinux.0", mode: "octet"}, false},
		{"\x00\x02up\x00OCTET\x00", request{op: opWRQ, filename: "up", mode: "octet"}, false},
		// EDK2's request: tsize then blksize; order and spelling kept.
		{"\x00\x01grubx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00",
			request{op: opRRQ, filename: "grubx64.efi", mode: "octet", options: []option{{"tsize", "0"}, {"blksize", "1468"}}}, false},
		// No final NUL, padding NULs, a dangling name, a repeat, an empty name.
		{"\x00\x01f\x00netascii", request{op: opRRQ, filename: "f", mode: "netascii"}, false},
		{"\x00\x01f\x00octet\x00\x00\x00\x00", request{op: opRRQ, filename: "f", mode: "octet"}, false},
		{"\x00\x01f\x00octet\x00blksize\x00", request{op: opRRQ, filename: "f", mode: "octet"}, false},
		{"\x00\x01f\x00octet\x00BlkSize\x001024\x00blksize\x0065464\x00\x00x\x00",
			request{op: opRRQ, filename: "f", mode: "octet", options: []option{{"BlkSize", "1024"}}}, false},
		{"\x00\x01f\x00octet\x00windowsize\x00\x00tsize\x000\x00",
			request{op: opRRQ, filename: "f", mode: "octet", options: []option{{"tsize", "0"}}}, false},
		{"", request{}, true},
		{"\x00", request{}, true},
		{"\x00\x01", request{}, true},
		{"\x00\x01\x00octet\x00", request{}, true},
		{"\x00\x01f\x00", request{}, true},
		{"\x00\x01f\x00mail\x00", request{}, true},
		{"\x00\x03\x00\x01data", request{}, true},
		{"\x00\x04\x00\x01", request{}, true},
		{"\x01\x01f\x00octet\x00", request{}, true},
	}
	for _, tc := range cases {
		got, err := parseRequest([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("parseRequest(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err != nil && !errors.Is(err, errMalformed) {
			t.Errorf("parseRequest(%q) error %v does not wrap errMalformed", tc.in, err)
		}
		if !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseRequest(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	cases := map[string]string{
		"pxelinux.0":            "pxelinux.0",
		"/pxelinux.0":           "pxelinux.0",
		"//grub//./grub.cfg":    "grub/grub.cfg",
		`boot\x86\wdsnbp.com`:   "boot/x86/wdsnbp.com",
		"pxelinux.cfg/01-52-54": "pxelinux.cfg/01-52-54",
		"a/./b/":                "a/b",
		"..":                    "!2",
		"../x":                  "!2",
		"a/../b":                "!2",
		`a\..\..\etc`:           "!2",
		"a/..":                  "!2",
		"...":                   "...",
		"..a/b..":               "..a/b..",
		"/":                     "!1",
		".":                     "!1",
		"":                      "!1",
		"a\x00b":                "!2",
	}
	for in, want := range cases {
		got, err := cleanPath(in)
		if strings.HasPrefix(want, "!") {
			code := ErrCodeNotFound
			if want == "!2" {
				code = ErrCodeAccess
			}
			if we := toWireError(err); err == nil || we.Code != code {
				t.Errorf("cleanPath(%q) = %q, %v; want error code %d", in, got, err, code)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	if !errors.Is(fmt.Errorf("x: %w", ErrNotFound), fs.ErrNotExist) || !errors.Is(ErrAccess, fs.ErrPermission) {
		t.Error("TFTP errors do not match fs sentinels")
	}
	if errors.Is(ErrIllegalOp, fs.ErrNotExist) {
		t.Error("illegal op matches ErrNotExist")
	}
}

func TestNetasciiReader(t *testing.T) {
	in := "line1\nline2\r\nbare\rend\n"
	want := "line1\r\nline2\r\x00\r\nbare\r\x00end\r\n"
	r := newNetasciiReader(strings.NewReader(in))
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if err := iotest.TestReader(newNetasciiReader(strings.NewReader(in)), []byte(want)); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"\x00\x01pxelinux.0\x00octet\x00",
		"\x00\x01grubx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00",
		"\x00\x01undionly.kpxe\x00octet\x00blksize\x001432\x00tsize\x000\x00windowsize\x0016\x00",
		"\x00\x01/boot/grub/x86_64-efi/command.lst\x00octet\x00blksize\x001024\x00tsize\x000\x00",
		"\x00\x01pxelinux.cfg/01-52-54-00-00-00-10\x00octet\x00tsize\x000\x00blksize\x001408\x00",
		"\x00\x01boot\\x86\\wdsnbp.com\x00octet\x00",
		"\x00\x01../../etc/passwd\x00netascii\x00timeout\x005\x00",
		"\x00\x02up\x00octet\x00",
		"\x00\x01f\x00octet\x00BLKSIZE\x0070000\x00blksize\x008\x00windowsize\x0065535\x00timeout\x00256",
		"\x00\x01f\x00octet\x00windowsize\x00-1\x00tsize\x00\x00\x00\x00",
	} {
		f.Add([]byte(seed), int64(1<<20))
	}
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		r, err := parseRequest(b)
		if err != nil {
			return
		}
		if r.op != opRRQ && r.op != opWRQ || r.filename == "" || (r.mode != "octet" && r.mode != "netascii") {
			t.Fatalf("accepted %+v", r)
		}
		seen := map[string]bool{}
		for _, o := range r.options {
			k := strings.ToLower(o.name)
			if k == "" || o.value == "" || seen[k] || strings.ContainsRune(o.name+o.value, 0) {
				t.Fatalf("bad option list %+v", r.options)
			}
			seen[k] = true
		}
		again, err := parseRequest(appendRequest(nil, r))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v -> %+v, %v", r, again, err)
		}
		if p, err := cleanPath(r.filename); err == nil {
			if strings.Contains(p, `\`) {
				t.Fatalf("cleanPath(%q) = %q", r.filename, p)
			}
			for _, part := range strings.Split(p, "/") {
				if part == ".." || part == "." || part == "" {
					t.Fatalf("cleanPath(%q) = %q is not clean and local", r.filename, p)
				}
			}
		}
		if size < -1 {
			size = -1
		}
		lim := limits{maxBlock: maxBlockSize, maxWindow: 64, maxWindowBytes: 1 << 20}
		n := negotiate(r.options, size, lim)
		if n.blockSize < minBlockSize || n.blockSize > maxBlockSize || n.windowSize < 1 || n.windowSize > 64 ||
			(n.windowSize > 1 && n.windowSize*n.blockSize > lim.maxWindowBytes) || n.timeout < 0 || n.timeout > 255 {
			t.Fatalf("negotiate(%+v) = %+v", r.options, n)
		}
		if len(n.oack) > len(r.options) {
			t.Fatalf("OACK %v answers more than was asked %v", n.oack, r.options)
		}
	})
}
