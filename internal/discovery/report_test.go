package discovery

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/render"
)

// Every field the rendered script sends is one the parser takes: a field
// it refused would make every report a 400.
func TestScriptFieldsParse(t *testing.T) {
	q := url.Values{}
	for _, f := range render.DiscoveryFields {
		q.Set(f.Name, "")
	}
	q.Set("mac", "52:54:00:12:34:56")
	if _, err := ParseReport(q.Encode()); err != nil {
		t.Fatalf("the script's fields: %v", err)
	}
}

func TestParseReport(t *testing.T) {
	d, err := ParseReport("mac=52-54-00-AB-CD-EF&uuid=8A9B0C1D-2E3F-4051-8697-A8B9CADBECFD&manufacturer=Rack+Maker&serial=%20S1%20&platform=efi&buildarch=x86_64&memsize=2048")
	if err != nil {
		t.Fatal(err)
	}
	if d.MAC != "52:54:00:ab:cd:ef" || d.UUID != "8a9b0c1d-2e3f-4051-8697-a8b9cadbecfd" || d.Manufacturer != "Rack Maker" || d.Serial != "S1" || d.Memory != "2048" {
		t.Errorf("parsed %+v", d)
	}
	for _, c := range []struct{ q, want string }{
		{"", "field mac"},
		{"mac=x", "field mac"},
		{"mac=52:54:00:ab:cd:ef&serial=" + strings.Repeat("a", MaxField+1), "field serial is 129 bytes"},
		{"mac=52:54:00:ab:cd:ef&" + strings.Repeat("x", MaxQuery), "query is"},
		{"mac=52:54:00:ab:cd:ef&x=1", `unknown field "x"`},
		{"mac=52:54:00:ab:cd:ef&mac=52:54:00:ab:cd:ee", "given 2 times"},
		{"mac=52:54:00:ab:cd:ef&asset=%0a", ""}, // trimmed to nothing: fine
		{"mac=52:54:00:ab:cd:ef&asset=a%0ab", "unprintable"},
		{"mac=52:54:00:ab:cd:ef&platform=EFI%3Brm", "field platform"},
		{"mac=52:54:00:ab:cd:ef&uuid=1234", "field uuid"},
		{"mac=52:54:00:ab:cd:ef&serial=%", "bad discovery report"},
	} {
		_, err := ParseReport(c.q)
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.q, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadReport) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60q: %v, want %q", c.q, err, c.want)
		}
	}
}

// FuzzParseReport: whatever a client sends, the parser returns a report
// within the bounds or an error, and never panics.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		"mac=52:54:00:00:07:10&uuid=8a9b0c1d-2e3f-4051-8697-a8b9cadbecfd&manufacturer=QEMU&product=Standard%20PC&serial=S&asset=A&chip=e1000&buildarch=i386&platform=pcbios&memsize=",
		"mac=52:54:00:00:07:10&serial=%ff", "mac=&mac=", "%", "mac=52:54:00:00:07:10&product=" + strings.Repeat("%41", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		d, err := ParseReport(q)
		if err != nil {
			return
		}
		for _, v := range []string{d.MAC, d.UUID, d.Manufacturer, d.Product, d.Serial, d.Asset, d.Chip, d.BuildArch, d.Platform, d.Memory} {
			if len(v) > MaxField || strings.ContainsAny(v, "\x00\n\r") {
				t.Fatalf("field out of bounds: %q", v)
			}
		}
		if d.MAC == "" {
			t.Fatal("a report without a MAC was accepted")
		}
	})
}
