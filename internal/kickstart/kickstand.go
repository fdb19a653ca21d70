package kickstart

import (
	"fmt"
	"net/netip"
	"strings"
)

// kickstand's own checks: things ksvalidator accepts but that break or
// surprise an install. They are warnings and never change the exit status
// unless the caller is strict.

func (l *linter) kickstandCommand(c *cmdCtx) {
	pos := c.n.Pos
	switch c.name {
	case "rootpw":
		l.rootpw = append(l.rootpw, pos)
	case "cdrom":
		l.cdrom = append(l.cdrom, pos)
	case "url":
		l.url = append(l.url, pos)
	case "network":
		if c.res == nil {
			return
		}
		if v := c.str("ipv6"); v != "" && !validIPv6Setting(v) {
			l.warn(pos, fmt.Sprintf("network --ipv6=%s is not auto, dhcp or an IPv6 address[/prefix]", v))
		}
		if v := c.str("ipv6gateway"); v != "" {
			if a, err := netip.ParseAddr(v); err != nil || !a.Is6() {
				l.warn(pos, fmt.Sprintf("network --ipv6gateway=%s is not an IPv6 address", v))
			}
		}
		for _, ns := range commaList(c.str("nameserver")) {
			if _, err := netip.ParseAddr(ns); err != nil {
				l.warn(pos, fmt.Sprintf("network --nameserver entry %q is not an IP address", ns))
			}
		}
		if v := c.str("ip"); v != "" {
			if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
				l.warn(pos, fmt.Sprintf("network --ip=%s is not an IPv4 address", v))
			}
		}
	}
}

func validIPv6Setting(v string) bool {
	switch v {
	case "auto", "dhcp", "ignore":
		return true
	}
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		return err == nil && p.Addr().Is6()
	}
	a, err := netip.ParseAddr(v)
	return err == nil && a.Is6() && !a.Is4In6()
}

// kickstandScript flags an indented %end: pykickstart closes the section
// there even inside a heredoc, which silently truncates the script.
func (l *linter) kickstandScript(n *Node) {
	if n.End == nil {
		return
	}
	if t := strings.TrimLeftFunc(n.End.Raw, pySpace); t != n.End.Raw {
		l.warn(n.End.Pos, fmt.Sprintf("indented %%end closes %s here; a heredoc body cannot contain %%end", n.Args[0]))
	}
}
