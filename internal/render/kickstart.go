package render

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
)

//go:embed builtin
var builtin embed.FS

// DefaultKickstart is the template used by profiles that name none.
const DefaultKickstart = "default.ks"

// Kickstart renders a host's kickstart from its profile's template, rewrites
// it for the host's platform and release (disk names, install source,
// timesource), and lints the result for that release. Problems are returned,
// not fatal: the operator decides whether a kickstart that fails lint is
// served (it is, and the problems are logged against the host).
//
// Templates run with missingkey=error over plain maps, so a misspelt
// variable stops the render with the template name, line and variable
// instead of silently producing an empty string in a root password or a
// partition size.
func Kickstart(templatesDir string, t *boot.Target, p boot.Plan) ([]byte, []kickstart.Problem, error) {
	return kickstartWith(&Templates{}, templatesDir, t, p)
}

func kickstartWith(c *Templates, templatesDir string, t *boot.Target, p boot.Plan) ([]byte, []kickstart.Problem, error) {
	b, err := renderTemplate(c, templatesDir, t, p)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range p.Fixes {
		if f.Applied && f.KickstartPre {
			b = append(append(b, '\n'), acceptRAPre...)
		}
	}
	name := t.Record.Name + ".ks"
	ver, verErr := kickstart.ParseVersion(t.Distro.Release)
	platform := t.Record.Platform
	if t.Profile.Platform != "" {
		platform = t.Profile.Platform
	}
	opts := kickstart.RewriteOptions{Platform: kickstart.Platform(platform)}
	if verErr == nil {
		opts.Version = ver
	}
	if p.BaseURL != "" {
		opts.Source = &kickstart.Source{URL: TemplateData(t, p)["install"].(map[string]any)["url"].(string)}
	}
	b, _, err = kickstart.RewriteSource(b, name, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("kickstart for %s: rewrite: %w", t.Record.Name, err)
	}
	if verErr != nil {
		return b, []kickstart.Problem{{File: name, Severity: kickstart.SeverityWarning, Message: fmt.Sprintf("not linted: %v", verErr), Kickstand: true}}, nil
	}
	return b, kickstart.Lint(b, name, ver, kickstart.LintOptions{}), nil
}

// acceptRAPre is seed 000's fix #4, bounded and logged as the seed had it:
// NetworkManager sets accept_ra=0 for a static IPv6 address with no
// gateway, so RAs (and the default route) stop being learnt. It re-enables
// them every second for five minutes, in the background, logging to a file
// so it does not pollute the %pre log.
const acceptRAPre = `%pre --log=/tmp/kickstand-accept-ra-pre.log
# kickstand: seed 000 race #4 (NetworkManager sets accept_ra=0 for a static
# IPv6 address without a gateway). Set gateway6 in the inventory to drop this.
(
  for i in $(seq 1 300); do
    for d in /proc/sys/net/ipv6/conf/*; do
      case ${d##*/} in all|default|lo) continue ;; esac
      sysctl -w net.ipv6.conf.${d##*/}.accept_ra=1 net.ipv6.conf.${d##*/}.accept_ra_defrtr=1
    done
    sleep 1
  done
) > /tmp/networkmanager-hack.log 2>&1 &
%end
`

// Templates keeps parsed kickstart templates and snippets, keyed by file
// and checked against its modification time and size on every use, so a
// busy server parses each template once instead of per request (parsing was
// a quarter of a /ks request's CPU) and still follows edits at once. The
// zero value is ready; one Templates may serve concurrent renders.
type Templates struct {
	mu     sync.Mutex
	parsed map[string]*parsedTemplate
}

type parsedTemplate struct {
	stamp string // where it came from, mtime and size: a change means re-parse
	tree  *parse.Tree
}

// Kickstart is the package's Kickstart, with t's cache.
func (c *Templates) Kickstart(templatesDir string, t *boot.Target, p boot.Plan) ([]byte, []kickstart.Problem, error) {
	return kickstartWith(c, templatesDir, t, p)
}

// DirStamp is a version of the templates directory: it changes when any
// file under it is added, removed, or written. Caches of rendered
// kickstarts compare it; the built-in templates never change.
func (c *Templates) DirStamp(dir string) string {
	if dir == "" {
		return ""
	}
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", p, info.ModTime().UnixNano(), info.Size())
		}
		return nil
	})
	return b.String()
}

// tree returns the parsed template name, from the cache when the file is
// unchanged.
func (c *Templates) tree(dir, name string) (*parse.Tree, error) {
	src, stamp, err := templateStamp(dir, name)
	if err != nil {
		return nil, err
	}
	key := dir + "\x00" + name
	c.mu.Lock()
	pt := c.parsed[key]
	c.mu.Unlock()
	if pt != nil && pt.stamp == stamp {
		return pt.tree, nil
	}
	if src == nil {
		b, err := readTemplate(dir, name)
		if err != nil {
			return nil, err
		}
		src = &b
	}
	// The functions are placeholders for parsing; each render binds its own.
	tm, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"join": strings.Join, "snippet": func(string) (string, error) { return "", nil },
	}).Parse(*src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.parsed == nil {
		c.parsed = map[string]*parsedTemplate{}
	}
	c.parsed[key] = &parsedTemplate{stamp: stamp, tree: tm.Tree}
	c.mu.Unlock()
	return tm.Tree, nil
}

// templateStamp says which file readTemplate would read for name and its
// version, without reading it; for a built-in template it returns the
// source too (embedded files never change).
func templateStamp(dir, name string) (*string, string, error) {
	clean, err := cleanTemplateName(name)
	if err != nil {
		return nil, "", err
	}
	if dir != "" {
		if root, err := os.OpenRoot(dir); err == nil {
			st, err := root.Stat(clean)
			root.Close()
			if err == nil {
				return nil, fmt.Sprintf("file %d %d", st.ModTime().UnixNano(), st.Size()), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, "", fmt.Errorf("template %s: %w", name, err)
			}
		}
	}
	b, err := builtin.ReadFile("builtin/" + clean)
	if err != nil {
		return nil, "", fmt.Errorf("template %s: not in %s and not built in", name, dir)
	}
	src := string(b)
	return &src, "builtin", nil
}

func renderTemplate(c *Templates, templatesDir string, t *boot.Target, p boot.Plan) ([]byte, error) {
	name := t.Profile.Kickstart
	if name == "" {
		name = DefaultKickstart
	}
	tree, err := c.tree(templatesDir, name)
	if err != nil {
		return nil, fmt.Errorf("kickstart for %s: %w", t.Record.Name, err)
	}
	data := TemplateData(t, p)
	var tmpl *template.Template
	funcs := template.FuncMap{
		"join": strings.Join,
		"snippet": func(n string) (string, error) {
			st, err := c.tree(templatesDir, "snippets/"+n)
			if err != nil {
				return "", fmt.Errorf("snippet %q: %w", n, err)
			}
			sn, err := tmpl.AddParseTree("snippets/"+n, st)
			if err != nil {
				return "", err
			}
			var b bytes.Buffer
			if err := sn.Execute(&b, data); err != nil {
				return "", err
			}
			return strings.TrimRight(b.String(), "\n"), nil
		},
	}
	tmpl, err = template.New(name).Option("missingkey=error").Funcs(funcs).AddParseTree(name, tree)
	if err != nil {
		return nil, fmt.Errorf("kickstart for %s: %w", t.Record.Name, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("kickstart for %s: %w", t.Record.Name, err)
	}
	return b.Bytes(), nil
}

func cleanTemplateName(name string) (string, error) {
	clean := filepath.ToSlash(filepath.Clean(name))
	if filepath.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("template %q: outside the templates directory", name)
	}
	return clean, nil
}

// readTemplate reads a template from the operator's directory, falling back
// to the built-in ones, and never from outside the directory.
func readTemplate(dir, name string) (string, error) {
	clean, err := cleanTemplateName(name)
	if err != nil {
		return "", err
	}
	if dir != "" {
		root, err := os.OpenRoot(dir)
		if err == nil {
			defer root.Close()
			b, err := fs.ReadFile(root.FS(), clean)
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("template %s: %w", name, err)
			}
		}
	}
	b, err := builtin.ReadFile("builtin/" + clean)
	if err != nil {
		return "", fmt.Errorf("template %s: not in %s and not built in", name, dir)
	}
	return string(b), nil
}

// TemplateData is what templates see. Keys are always present (nil when not
// applicable) so {{ if .network.v6 }} works under missingkey=error.
func TemplateData(t *boot.Target, p boot.Plan) map[string]any {
	h := t.Record.Host
	rel, _ := inventory.ParseRelease(t.Distro.Release)
	netw := map[string]any{
		"hostname": h.Name, "device": h.Interface, "nameservers": h.Nameservers,
		"v4": nil, "v6": nil,
	}
	if a, ok := h.Addr4(); ok {
		netw["v4"] = map[string]any{
			"address": a.Addr().String(), "prefix": a.Bits(),
			"netmask": net.IP(net.CIDRMask(a.Bits(), 32)).String(), "gateway": h.Gateway4,
		}
	}
	if a, ok := h.Addr6(); ok {
		netw["v6"] = map[string]any{"address": a.Addr().String(), "prefix": a.Bits(), "gateway": h.Gateway6}
	}
	hv := h.TemplateVars(t.Profile)
	vars := map[string]any{}
	for k, v := range hv {
		vars[k] = v
	}
	login := inventory.LoginOf(hv)
	repo := p.BaseURL + "/distros/" + t.Distro.Name + "/"
	if strings.Contains(t.Distro.Repo, "://") {
		repo = t.Distro.Repo
	}
	return map[string]any{
		"host": map[string]any{
			"name": h.Name, "macs": h.MACs, "uuid": h.UUID, "platform": h.Platform,
			"timezone": h.Timezone, "ntp": h.NTP, "interface": h.Interface, "vars": vars,
		},
		"profile": map[string]any{"name": t.Profile.Name, "kernel_args": t.Profile.KernelArgs},
		"distro":  map[string]any{"name": t.Distro.Name, "arch": t.Distro.Arch, "release": t.Distro.Release},
		"release": map[string]any{
			"name": rel.String(), "family": rel.Family, "major": rel.Major, "minor": rel.Minor,
			"dracut": rel.Dracut(),
			// timesource replaced timezone --ntpservers in RHEL 9 (REFERENCE §6).
			"timesource": (rel.Family == "rhel" && rel.Major >= 9) || (rel.Family == "fedora" && rel.Major >= 33),
		},
		// login is what the built-in kickstart writes into rootpw,
		// user and sshkey; the inventory refuses a host it would lock.
		"login": map[string]any{
			"rootpw": login.RootPW, "user": login.User, "ssh_keys": login.SSHKeys, "key_user": login.KeyUser,
			// The sshkey command (Fedora 22, RHEL 8) takes one key per
			// user; otherwise %post writes authorized_keys.
			"sshkey": len(login.SSHKeys) == 1 && ((rel.Family == "rhel" && rel.Major >= 8) || (rel.Family == "fedora" && rel.Major >= 22)),
			// No password to type: sudo must not ask for one.
			"nopasswd": login.User != "" && login.RootPW == "",
		},
		"network": netw,
		"install": map[string]any{"url": repo},
		"server": map[string]any{"url": p.BaseURL, "ks_url": p.KickstartURL,
			"built_url":  p.BaseURL + "/cb/" + t.Record.Token + "/built",
			"failed_url": p.BaseURL + "/cb/" + t.Record.Token + "/failed"},
	}
}
