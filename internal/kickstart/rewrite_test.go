package kickstart

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// seed000 is the pair of directives from seed 000 (the blog's network line
// joined, as Anaconda needs it on one line).
const seed000 = `lang en_US.UTF-8
keyboard us
timezone America/Los_Angeles --isUtc --ntpservers=2401:beef:20::a123,2401:beef:20::b123
network --hostname=newbox.wann.net --bootproto=static --ipv6=2001:40:8022:1::11 --nameserver=2401:beef:20::a53,2001:beef:20::b53 --activate
rootpw --plaintext x
url --url=http://[2001:db8::10]/os
bootloader
autopart
%packages
@core
%end
`

func errorsOnly(probs []Problem) []Problem { return Errors(probs) }

func TestSeed000(t *testing.T) {
	if errs := errorsOnly(Lint([]byte(seed000), "seed000.ks", RHEL7, LintOptions{})); len(errs) != 0 {
		t.Fatalf("rhel7 should pass, got %v", errs)
	}
	v9, _ := ParseVersion("rhel9")
	errs := errorsOnly(Lint([]byte(seed000), "seed000.ks", v9, LintOptions{}))
	if len(errs) == 0 {
		t.Fatal("rhel9 should fail")
	}
	want := "seed000.ks:3: error: The option --isUtc will be deprecated in future releases. Please modify your kickstart file to replace this option with its preferred alias --utc."
	if errs[0].String() != want {
		t.Fatalf("rhel9 first problem:\n got %s\nwant %s", errs[0], want)
	}
	// --allow-deprecated turns it into a warning, so the file passes
	if HasErrors(Lint([]byte(seed000), "seed000.ks", v9, LintOptions{AllowDeprecated: true}), false) {
		t.Fatal("rhel9 with AllowDeprecated should have no errors")
	}

	out, diff, err := RewriteSource([]byte(seed000), "seed000.ks", RewriteOptions{Version: v9})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"timezone America/Los_Angeles --utc",
		"timesource --ntp-server=2401:beef:20::a123",
		"timesource --ntp-server=2401:beef:20::b123",
	} {
		if !strings.Contains(string(out), line+"\n") {
			t.Errorf("rewrite output lacks %q:\n%s", line, out)
		}
	}
	if !strings.Contains(diff, "-timezone America/Los_Angeles --isUtc --ntpservers=") || !strings.Contains(diff, "+timesource --ntp-server=2401:beef:20::b123") {
		t.Errorf("diff does not show the fix:\n%s", diff)
	}
	for _, v := range []Version{RHEL9, RHEL10, F40} {
		if errs := errorsOnly(Lint(out, "seed000.ks", v, LintOptions{})); len(errs) != 0 {
			t.Errorf("rewritten kickstart still fails %v: %v", v, errs)
		}
	}
	// below RHEL9 the rewrite keeps --ntpservers (timesource does not exist
	// there) but still spells --utc
	out7, _, err := RewriteSource([]byte(seed000), "seed000.ks", RewriteOptions{Version: RHEL7})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out7), "timezone America/Los_Angeles --utc --ntpservers=") {
		t.Errorf("rhel7 rewrite:\n%s", out7)
	}
	if errs := errorsOnly(Lint(out7, "seed000.ks", RHEL7, LintOptions{})); len(errs) != 0 {
		t.Errorf("rhel7 rewrite fails: %v", errs)
	}
}

func TestSeed000KickstandWarnings(t *testing.T) {
	src := strings.Replace(seed000, "--ipv6=2001:40:8022:1::11", "--ipv6=2001:40:8022:1::11::5", 1) + "rootpw --plaintext y\ncdrom\n"
	probs := Lint([]byte(src), "w.ks", RHEL7, LintOptions{})
	var warns []string
	for _, p := range probs {
		if p.Severity == SeverityError {
			t.Fatalf("unexpected error %s", p)
		}
		warns = append(warns, p.String())
	}
	want := []string{
		"w.ks:4: warning: network --ipv6=2001:40:8022:1::11::5 is not auto, dhcp or an IPv6 address[/prefix]",
		"w.ks:12: warning: rootpw given again (first at line 5); the last one wins",
		"w.ks:13: warning: cdrom together with url (line 6): only one install source is used",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	if HasErrors(probs, false) {
		t.Error("warnings must not fail a non-strict lint")
	}
	if !HasErrors(probs, true) {
		t.Error("warnings must fail a strict lint")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from golden file:\n%s", name, UnifiedDiff("want", "got", want, got))
	}
}

// TestGoldenSeed001 is seed 001's transformation: a cdrom kickstart on sda
// becomes an NFS (Xen PV, xvda) or HTTP (KVM, vda) kickstart.
func TestGoldenSeed001(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "ks", "80-xen-seed001.ks"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		plat   string
		source string
	}{
		{"seed001-xen-nfs", "xen", "nfs=192.0.2.1:/var/xen/install"},
		{"seed001-kvm-url", "kvm", "url=http://192.0.2.1/install"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plat, err := ParsePlatform(tc.plat)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseSource(tc.source)
			if err != nil {
				t.Fatal(err)
			}
			out, diff, err := RewriteSource(src, "80-xen-seed001.ks", RewriteOptions{Platform: plat, Source: &s, Version: RHEL6})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".ks", out)
			golden(t, tc.name+".diff", []byte(diff))
			if strings.Contains(string(out), "sda") || strings.Contains(string(out), "/dev/hd") || strings.Contains(string(out), "\ncdrom\n") {
				t.Errorf("sda/hda/cdrom left in output:\n%s", out)
			}
			for _, v := range []Version{RHEL6, RHEL7} {
				if errs := errorsOnly(Lint(out, tc.name, v, LintOptions{})); len(errs) != 0 {
					t.Errorf("rewritten kickstart fails %v: %v", v, errs)
				}
			}
			// the diff applies with GNU patch (a real peer)
			checkPatch(t, src, out, diff)
		})
	}
}

func checkPatch(t *testing.T, orig, want []byte, diff string) {
	t.Helper()
	if _, err := exec.LookPath("patch"); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("patch not installed: %v", err)
		}
		t.Skipf("patch not installed: %v", err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "ks.cfg")
	if err := os.WriteFile(f, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("patch", "--batch", "--silent", f)
	cmd.Stdin = strings.NewReader(diff)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch: %v\n%s\n%s", err, out, diff)
	}
	got, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("patched file differs:\n%s", UnifiedDiff("want", "got", want, got))
	}
}

func TestRewriteDisks(t *testing.T) {
	src := `ignoredisk --only-use=sda,/dev/sdb
clearpart --all --drives sda,hdb
part /boot --ondisk=sda --size=500
part / --ondrive sdb --size=1 --grow
part /data --onpart=sdc1
bootloader --driveorder=sda,sdb --boot-drive=sda # keep this comment
zerombr
harddrive --partition=sdd1 --dir=/iso
network --device=eth0 --bootproto=dhcp
%pre
dd if=/dev/zero of=/dev/sda bs=512 count=1
parted /dev/hda1 print ; echo /dev/sdz9 /dev/sdaa
%end
%packages
sdparm
%end
`
	f := ParseString(src, "d.ks")
	out, err := Rewrite(f, RewriteOptions{Platform: PlatformKVM, Version: RHEL9})
	if err != nil {
		t.Fatal(err)
	}
	want := `ignoredisk --only-use=vda,/dev/vdb
clearpart --all --drives vda,vdb
part /boot --ondisk=vda --size=500
part / --ondrive vdb --size=1 --grow
part /data --onpart=vdc1
bootloader --driveorder=vda,vdb --boot-drive=vda # keep this comment
zerombr
harddrive --partition=vdd1 --dir=/iso
network --device=eth0 --bootproto=dhcp
%pre
dd if=/dev/zero of=/dev/vda bs=512 count=1
parted /dev/vda1 print ; echo /dev/vdz9 /dev/vdaa
%end
%packages
sdparm
%end
`
	if string(out) != want {
		t.Fatalf("rewrite:\n%s", UnifiedDiff("want", "got", []byte(want), out))
	}
	same, err := Rewrite(f, RewriteOptions{Platform: PlatformBaremetal, Version: RHEL9})
	if err != nil {
		t.Fatal(err)
	}
	if string(same) != src {
		t.Fatalf("baremetal rewrite changed the file:\n%s", UnifiedDiff("src", "out", []byte(src), same))
	}
	checkPatch(t, []byte(src), out, UnifiedDiff("a", "b", []byte(src), out))
}

func TestParseSourceAndPlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Source
		ok   bool
	}{
		{"url=http://192.0.2.1/os", Source{URL: "http://192.0.2.1/os"}, true},
		{"nfs=192.0.2.1:/var/xen/install", Source{NFSServer: "192.0.2.1", NFSDir: "/var/xen/install"}, true},
		{"nfs=[2001:db8::1]:/export", Source{NFSServer: "[2001:db8::1]", NFSDir: "/export"}, true},
		{"nfs=nfs://server.example/export/os", Source{NFSServer: "server.example", NFSDir: "/export/os"}, true},
		{"nfs=server", Source{}, false},
		{"cd=1", Source{}, false},
		{"url=", Source{}, false},
	} {
		got, err := ParseSource(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSource(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if _, err := ParsePlatform("sparc"); err == nil {
		t.Error("ParsePlatform(sparc) should fail")
	}
}
