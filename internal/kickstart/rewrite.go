package kickstart

import (
	"fmt"
	"regexp"
	"strings"
)

// Platform is the machine type a kickstart is rewritten for; it decides
// the disk names the installer will see.
type Platform string

const (
	PlatformBaremetal Platform = "baremetal" // sdX stays sdX
	PlatformKVM       Platform = "kvm"       // virtio-blk: vdX
	PlatformXen       Platform = "xen"       // Xen PV: xvdX
)

// ParsePlatform accepts baremetal, kvm (or virtio, qemu) and xen.
func ParsePlatform(s string) (Platform, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "baremetal", "metal", "physical":
		return PlatformBaremetal, nil
	case "kvm", "virtio", "qemu":
		return PlatformKVM, nil
	case "xen", "xenpv", "xen-pv":
		return PlatformXen, nil
	}
	return "", fmt.Errorf("platform %q: want baremetal, kvm or xen", s)
}

func (p Platform) diskPrefix() string {
	switch p {
	case PlatformKVM:
		return "vd"
	case PlatformXen:
		return "xvd"
	}
	return ""
}

// Source is an install source to put in place of cdrom.
type Source struct {
	URL       string // url --url=
	NFSServer string // nfs --server=
	NFSDir    string // nfs --dir=
}

// ParseSource reads "url=http://host/path" or "nfs=server:/dir" (an
// "nfs://server/dir" URL is accepted too).
func ParseSource(s string) (Source, error) {
	kind, val, ok := strings.Cut(s, "=")
	if !ok {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "ftp://") {
			return Source{URL: s}, nil
		}
		return Source{}, fmt.Errorf("install source %q: want url=URL or nfs=server:/dir", s)
	}
	switch kind {
	case "url":
		if val == "" {
			return Source{}, fmt.Errorf("install source %q: empty URL", s)
		}
		return Source{URL: val}, nil
	case "nfs":
		v := strings.TrimPrefix(val, "nfs://")
		var server, dir string
		if strings.HasPrefix(val, "nfs://") {
			i := strings.IndexByte(v, '/')
			if i < 0 {
				return Source{}, fmt.Errorf("install source %q: nfs URL has no path", s)
			}
			server, dir = v[:i], v[i:]
		} else {
			// the last ":/" separates server (possibly [IPv6]) from dir
			i := strings.LastIndex(v, ":/")
			if i <= 0 {
				return Source{}, fmt.Errorf("install source %q: want nfs=server:/dir", s)
			}
			server, dir = v[:i], v[i+1:]
		}
		return Source{NFSServer: server, NFSDir: dir}, nil
	}
	return Source{}, fmt.Errorf("install source %q: unknown kind %q", s, kind)
}

func (s Source) line() string {
	if s.URL != "" {
		return "url --url=" + quoteArg(s.URL)
	}
	return "nfs --server=" + quoteArg(s.NFSServer) + " --dir=" + quoteArg(s.NFSDir)
}

// RewriteOptions selects the rewrites to apply.
type RewriteOptions struct {
	Platform Platform
	// Source replaces a cdrom install source when set.
	Source *Source
	// Version is the target release: what it does not take is dropped or
	// translated (rewrite_release.go). Zero leaves commands and options
	// alone (only Platform and Source apply).
	Version Version
}

// Rewrite applies the rewrites to a parsed kickstart and returns the new
// text. Lines that no rewrite touches are kept byte for byte (apart from
// line endings becoming \n) so the diff shows only the changes.
func Rewrite(f *File, opts RewriteOptions) ([]byte, error) {
	release := opts.Version != 0
	if !release {
		// no target release: only the platform and source rewrites; the
		// RHEL9 tables serve to find the disk options
		opts.Version = RHEL9
	}
	cmds, secs := opts.Version.tables()
	if cmds == nil {
		return nil, fmt.Errorf("rewrite: unsupported version %v", opts.Version)
	}
	rw := &rewriter{opts: opts, release: release, cmds: cmds, secs: secs, rc: regexCache{}}
	var b strings.Builder
	for _, n := range f.Nodes {
		if n.spliced {
			continue
		}
		switch n.Kind {
		case NodeCommand:
			for _, l := range rw.command(n) {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		case NodeSection:
			b.WriteString(rw.header(n))
			b.WriteByte('\n')
			script := n.Args[0] != "%packages" && n.Args[0] != "%certificate" && n.Args[0] != "%addon" && n.Args[0] != "%anaconda"
			for _, l := range n.Body {
				if l.Included {
					continue
				}
				if script {
					b.WriteString(rw.devPaths(l.Raw))
				} else {
					b.WriteString(l.Raw)
				}
				b.WriteByte('\n')
			}
			if n.End != nil {
				b.WriteString(n.End.Raw)
				b.WriteByte('\n')
			}
		default:
			b.WriteString(n.Raw)
			b.WriteByte('\n')
		}
	}
	return []byte(b.String()), nil
}

// RewriteSource parses and rewrites a kickstart, returning the new text
// and a unified diff of the change ("" when nothing changed).
func RewriteSource(src []byte, name string, opts RewriteOptions) (out []byte, diff string, err error) {
	f := ParseString(string(src), name)
	out, err = Rewrite(f, opts)
	if err != nil {
		return nil, "", err
	}
	orig := plain(f)
	return out, UnifiedDiff("a/"+name, "b/"+name, orig, out), nil
}

// plain prints the file with no rewrite applied, in Rewrite's line
// layout, so diffs compare like with like.
func plain(f *File) []byte {
	var b strings.Builder
	for _, n := range f.Nodes {
		if n.spliced {
			continue
		}
		b.WriteString(n.Raw)
		b.WriteByte('\n')
		for _, l := range n.Body {
			if l.Included {
				continue
			}
			b.WriteString(l.Raw)
			b.WriteByte('\n')
		}
		if n.End != nil {
			b.WriteString(n.End.Raw)
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

type rewriter struct {
	opts RewriteOptions
	// release: rewrite for opts.Version (set) or only for the platform
	release    bool
	cmds, secs map[string]*cmdSpec
	rc         regexCache
}

var (
	diskNameRe = regexp.MustCompile(`^(/dev/)?(?:sd|hd)([a-z]{1,2})(p?[0-9]*)$`)
	devPathRe  = regexp.MustCompile(`/dev/(?:sd|hd)([a-z]{1,2})([0-9]*)\b`)
)

// disk renames one sdX/hdX device (with optional /dev/ and partition
// number) for the platform; anything else is returned unchanged.
func (rw *rewriter) disk(v string) string {
	p := rw.opts.Platform.diskPrefix()
	if p == "" {
		return v
	}
	m := diskNameRe.FindStringSubmatch(v)
	if m == nil {
		return v
	}
	return m[1] + p + m[2] + m[3]
}

func (rw *rewriter) diskList(v string) string {
	parts := strings.Split(v, ",")
	for i, s := range parts {
		parts[i] = rw.disk(strings.TrimSpace(s))
	}
	return strings.Join(parts, ",")
}

func (rw *rewriter) devPaths(line string) string {
	p := rw.opts.Platform.diskPrefix()
	if p == "" {
		return line
	}
	return devPathRe.ReplaceAllString(line, "/dev/"+p+"${1}${2}")
}

// diskOptions lists, per command, the option destinations holding disk
// names (as pykickstart names them) and whether they are comma lists.
var diskOptions = map[string]map[string]bool{
	"ignoredisk": {"ignoredisk": true, "onlyuse": true},
	"clearpart":  {"drives": true},
	"part":       {"disk": false, "onPart": false},
	"partition":  {"disk": false, "onPart": false},
	"bootloader": {"driveorder": true, "bootDrive": false},
	"harddrive":  {"partition": false},
	"zerombr":    {},
}

func (rw *rewriter) command(n *Node) []string {
	if len(n.Args) == 0 || n.Fatal != nil {
		return []string{n.Raw}
	}
	name := n.Args[0]
	if name == "cdrom" && rw.opts.Source != nil {
		return []string{rw.opts.Source.line()}
	}
	words := make([]string, len(n.toks))
	for i, t := range n.toks {
		words[i] = n.Raw[t.Start:min(t.End, len(n.Raw))]
	}
	changed := false
	spec := rw.cmds[name]
	if dests, ok := diskOptions[name]; ok && rw.opts.Platform.diskPrefix() != "" {
		if name == "zerombr" {
			for i := 1; i < len(n.Args); i++ {
				if d := rw.disk(n.Args[i]); d != n.Args[i] {
					words[i], changed = quoteArg(d), true
				}
			}
		} else if spec != nil && spec.acts != nil {
			for i := 1; i < len(n.Args); i++ {
				arg := n.Args[i]
				idx, opt, exp, hasExp, isOpt, err := spec.classify(arg)
				if err != nil || !isOpt || idx < 0 {
					continue
				}
				list, want := dests[spec.acts[idx].dest]
				if !want {
					continue
				}
				rewriteVal := func(v string) string {
					if list {
						return rw.diskList(v)
					}
					return rw.disk(v)
				}
				if hasExp {
					if nv := rewriteVal(exp); nv != exp {
						words[i], changed = quoteArg(opt+"="+nv), true
					}
				} else if i+1 < len(n.Args) {
					if nv := rewriteVal(n.Args[i+1]); nv != n.Args[i+1] {
						words[i+1], changed = quoteArg(nv), true
					}
					i++
				}
			}
		}
	}
	if drop, ok := rw.dropCommand(n); ok {
		return []string{drop}
	}
	words, extra, dropped, fixed := rw.releaseOptions(n, spec, words)
	changed = changed || fixed
	if !changed {
		return []string{n.Raw}
	}
	line := strings.Join(words, " ")
	if n.comment >= 0 {
		line += " " + strings.TrimRightFunc(n.Raw[n.comment:], pySpace)
	}
	out := []string{line}
	if len(dropped) > 0 {
		out = []string{rw.droppedComment(dropped), line}
	}
	return append(out, extra...)
}
