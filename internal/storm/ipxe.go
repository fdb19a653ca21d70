package storm

import (
	"errors"
	"net/url"
	"strings"
)

// bootScript is what a simulated machine takes from an iPXE script: the
// files to fetch and where its kickstart is.
type bootScript struct {
	kernel    string
	initrds   []string
	kickstart string // inst.ks= (or ks=) from the kernel command line
}

// parseIPXE reads the kernel, initrd and kickstart URLs out of the script
// the server rendered, the way iPXE runs it: the first kernel line wins,
// initrd lines add images, and options (--name x) are skipped.
func parseIPXE(script string) (bootScript, error) {
	var s bootScript
	if !strings.HasPrefix(script, "#!ipxe") {
		return s, errors.New("ipxe: not an iPXE script")
	}
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		args := f[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "--") {
			if !strings.Contains(args[0], "=") && len(args) > 1 && (args[0] == "--name" || args[0] == "-n") {
				args = args[1:]
			}
			args = args[1:]
		}
		if len(args) == 0 {
			continue
		}
		switch f[0] {
		case "kernel", "chain", "imgexec":
			if s.kernel != "" {
				continue
			}
			s.kernel = args[0]
			for _, a := range args[1:] {
				for _, k := range []string{"inst.ks=", "ks="} {
					if strings.HasPrefix(a, k) {
						s.kickstart = strings.TrimPrefix(a, k)
					}
				}
			}
		case "initrd", "imgfetch", "module":
			s.initrds = append(s.initrds, args[0])
		}
	}
	if s.kernel == "" {
		return s, errors.New("ipxe: the script boots no kernel")
	}
	for _, u := range append([]string{s.kernel, s.kickstart}, s.initrds...) {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") {
			return s, errors.New("ipxe: not an HTTP URL: " + u)
		}
	}
	return s, nil
}

// callbackURL is the built callback next to a kickstart URL
// (/ks/<token> -> /cb/<token>/built), as the rendered %post calls it.
func callbackURL(ks string) (string, error) {
	u, err := url.Parse(ks)
	if err != nil {
		return "", err
	}
	i := strings.LastIndex(u.Path, "/ks/")
	if i < 0 || i+4 >= len(u.Path) {
		return "", errors.New("kickstart URL has no /ks/<token>: " + ks)
	}
	u.Path = u.Path[:i] + "/cb/" + u.Path[i+4:] + "/built"
	u.RawPath, u.RawQuery = "", ""
	return u.String(), nil
}
