package suggest

import (
	"slices"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"ipaddr", "ipv4", 4}, {"kitten", "sitting", 3}, {"autopart", "autoprat", 2}, {"abc", "", 3}} {
		if got := Distance(c.a, c.b); got != c.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
	long := string(make([]byte, 65))
	if Distance(long, "a") < 1<<20 {
		t.Error("a word over 64 bytes was compared")
	}
}

func TestClosest(t *testing.T) {
	cands := slices.Values([]string{"profile", "profiles", "macs", "name"})
	for _, c := range []struct {
		s    string
		max  int
		want string
	}{{"profle", 2, "profile"}, {"mac", 1, "macs"}, {"nmae", 2, "name"}, {"zzzz", 2, ""}, {"profilees", 1, "profiles"}, {"profiels", 2, "profile"}} {
		if got := Closest(c.s, cands, c.max); got != c.want {
			t.Errorf("Closest(%q, %d) = %q, want %q", c.s, c.max, got, c.want)
		}
	}
}
