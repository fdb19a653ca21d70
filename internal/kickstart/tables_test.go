package kickstart

import (
	"strings"
	"testing"
)

// TestTablesLoad checks commands.txt describes every release, and that a
// few facts the corpus relies on read as pykickstart has them.
func TestTablesLoad(t *testing.T) {
	for _, v := range Versions() {
		cmds, secs := v.tables()
		if len(cmds) < 50 || len(secs) < 9 {
			t.Errorf("%v: %d commands, %d sections", v, len(cmds), len(secs))
		}
		if cmds["part"] != cmds["partition"] {
			t.Errorf("%v: part and partition must share one handler (conflict checks)", v)
		}
	}
	style := func(v Version, cmd string) cmdStyle { c, _ := v.tables(); return c[cmd].style }
	for _, c := range []struct {
		v     Version
		cmd   string
		style cmdStyle
	}{
		{RHEL7, "install", styleStrict}, {RHEL8, "install", styleDeprecated}, {RHEL9, "install", styleRemoved},
		{RHEL9, "autostep", styleDeprecated}, {F40, "autostep", styleRemoved},
		{RHEL8, "btrfs", styleDeprecated}, {F40, "btrfs", styleKnown},
	} {
		if got := style(c.v, c.cmd); got != c.style {
			t.Errorf("%v %s: style %d, want %d", c.v, c.cmd, got, c.style)
		}
	}
	cmds, _ := F40.tables()
	i, ok := cmds["timezone"].lookup("--isUtc")
	if !ok || !cmds["timezone"].acts[i].deprecated {
		t.Errorf("F40 timezone --isUtc should be an argparse deprecation")
	}
	if _, ok := specTables[RHEL10].cmds["timezone"].lookup("--isUtc"); ok {
		t.Errorf("RHEL10 timezone has no --isUtc")
	}
}

// TestTablesReject: a malformed table is refused with its line number.
func TestTablesReject(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"--x 1", "line 1: \"--x\" outside a command"},
		{"command x\n\tclass rhel9 x:X strict\n\t--a 7", "line 3: --a: bad arity"},
		{"command x\n\tclass rhel9 x:X strict\n\t--a 1 since=rhel11", "unknown release"},
		{"command x\n\tclass rhel9 x:X strict\n\t--a 1 since=rhel10 removed=rhel7", "in no release"},
		{"command x\n\tclass rhel9 x:X strict\n\t--a 1 colour=blue", "unknown attribute"},
		{"command x\n\tclass rhel9 x:X bogus", "unknown style"},
		{"command x\n\tclass rhel9 x:X raw\n\t--a 1", "takes no options"},
		{"command x\n\tclass rhel8- x:X strict\n\tclass rhel9 x:Y strict", "two classes"},
		{"command x\n\tclass all x:X strict\ncommand x\n\tclass rhel9 x:X strict", "defined twice"},
		{"command x\n\tclass rhel9-rhel7 x:X strict", "empty release range"},
	} {
		_, err := loadTables(c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.src, err, c.want)
		}
	}
}
