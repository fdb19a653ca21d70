package kickstart

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A RHEL 7 kickstart rewritten for later releases: what a release does not
// take is commented out or translated, never silently lost.
const rhel7Kickstart = `install
url --url=http://192.0.2.10/os
auth --enableshadow --passalgo=sha512
timezone Etc/UTC --isUtc --ntpservers=192.0.2.123,192.0.2.124
network --device=team0 --teamslaves=eth0,eth1 --teamconfig='{"runner": {"name": "activebackup"}}' --bootproto=dhcp # team
%packages --nobase --instLangs=en_US
@core
%end
%traceback
echo failed
%end
`

func TestRewriteRelease(t *testing.T) {
	for _, c := range []struct {
		v    Version
		want string
	}{
		{RHEL7, `install
url --url=http://192.0.2.10/os
auth --enableshadow --passalgo=sha512
timezone Etc/UTC --utc --ntpservers=192.0.2.123,192.0.2.124
network --device=team0 --teamslaves=eth0,eth1 --teamconfig='{"runner": {"name": "activebackup"}}' --bootproto=dhcp # team
# not in RHEL7: --nobase
%packages --instLangs=en_US
@core
%end
%traceback
echo failed
%end
`},
		{RHEL9, `# not in RHEL9: install
url --url=http://192.0.2.10/os
# not in RHEL9 (use authselect; pykickstart maps none of authconfig's options to it, so translate them by hand): auth --enableshadow --passalgo=sha512
timezone Etc/UTC --utc
timesource --ntp-server=192.0.2.123
timesource --ntp-server=192.0.2.124
network --device=team0 --teamslaves=eth0,eth1 --teamconfig='{"runner": {"name": "activebackup"}}' --bootproto=dhcp # team
# not in RHEL9: --nobase
%packages --inst-langs=en_US
@core
%end
%onerror
echo failed
%end
`},
		{RHEL10, `# not in RHEL10: install
url --url=http://192.0.2.10/os
# not in RHEL10 (use authselect; pykickstart maps none of authconfig's options to it, so translate them by hand): auth --enableshadow --passalgo=sha512
timezone Etc/UTC --utc
timesource --ntp-server=192.0.2.123
timesource --ntp-server=192.0.2.124
# not in RHEL10: --teamslaves=eth0,eth1 --teamconfig='{"runner": {"name": "activebackup"}}'
network --device=team0 --bootproto=dhcp # team
# not in RHEL10: --nobase
%packages --inst-langs=en_US
@core
%end
%onerror
echo failed
%end
`},
	} {
		out, _, err := RewriteSource([]byte(rhel7Kickstart), "r.ks", RewriteOptions{Version: c.v})
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != c.want {
			t.Errorf("%v:\n%s", c.v, UnifiedDiff("want", "got", []byte(c.want), out))
		}
		if errs := errorsOnly(Lint(out, "r.ks", c.v, LintOptions{})); len(errs) != 0 {
			t.Errorf("%v: rewritten kickstart fails lint: %v", c.v, errs)
		}
	}
	// without a release only the platform and source are rewritten
	out, diff, err := RewriteSource([]byte(rhel7Kickstart), "r.ks", RewriteOptions{Platform: PlatformKVM})
	if err != nil || string(out) != rhel7Kickstart || diff != "" {
		t.Errorf("no release: %v\n%s", err, diff)
	}
}

// The case: ks rewrite --release rhel9 --write, then ks lint of
// its own output, passes.
func TestRewriteWriteThenLint(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "r.ks")
	if err := os.WriteFile(p, []byte(rhel7Kickstart), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (LintCommand{Release: "rhel9", Out: io.Discard}).Run(ctx, []string{p}); err == nil {
		t.Fatal("the RHEL 7 kickstart should fail RHEL 9 lint before the rewrite")
	}
	if err := (RewriteCommand{Release: "rhel9", Write: true, Out: io.Discard}).Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (LintCommand{Release: "rhel9", Out: &out}).Run(ctx, []string{p}); err != nil {
		t.Fatalf("lint after rewrite --write: %v\n%s", err, out.String())
	}
}
