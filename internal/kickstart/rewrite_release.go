package kickstart

import (
	"strings"
)

// Release rewrites make a kickstart written for one release lint clean
// for another, as far as the difference is a release's: a command the
// target does not take (removed, deprecated, or only in other releases)
// is commented out with the reason; an option it does not take is
// renamed when kickstart renamed it, translated where pykickstart
// documents how (timezone --ntpservers -> timesource), and dropped with
// its values otherwise. What no release takes (a typo) and what is wrong
// in any release (a semantic error) is left for lint to report.

// rewriteNotes explain, in the comment left in place of a dropped
// command, what to use instead where that is not obvious.
var rewriteNotes = map[string]string{
	"auth":       "use authselect; pykickstart maps none of authconfig's options to it, so translate them by hand",
	"authconfig": "use authselect; pykickstart maps none of authconfig's options to it, so translate them by hand",
	"btrfs":      "lay the disk out with part or logvol",
	"method":     "name the install source with url, nfs, cdrom, harddrive or liveimg",
	"timesource": "name NTP servers with timezone --ntpservers",
	"vnc":        "use rdp",
}

// knownCommand: some release has the command (or section), in any state.
func knownCommand(name string) bool {
	for _, v := range lineage {
		cmds, secs := v.tables()
		if cmds[name] != nil || secs[name] != nil {
			return true
		}
	}
	return false
}

// dropCommand comments out a command the target release does not take.
func (rw *rewriter) dropCommand(n *Node) (string, bool) {
	name, v := n.Args[0], rw.opts.Version
	if !rw.release || commandUsable(v, name) || !knownCommand(name) {
		return "", false
	}
	why := "not in " + v.String()
	if note, ok := rewriteNotes[name]; ok {
		why += " (" + note + ")"
	}
	return "# " + why + ": " + n.Raw, true
}

// header rewrites a section header line for the target release.
func (rw *rewriter) header(n *Node) string {
	if _, _, err := shlexSplit(n.Raw, true); err != nil || len(n.Args) == 0 || !rw.release {
		return n.Raw
	}
	words := sourceWords(n)
	changed := false
	if n.Args[0] == "%traceback" && !commandUsable(rw.opts.Version, "%traceback") {
		// sections.py TracebackScriptSection: "use the %onerror section
		// instead"; it takes the same options.
		words[0], changed = "%onerror", true
	}
	spec := rw.secs[n.Args[0]]
	if words[0] == "%onerror" {
		spec = rw.secs["%onerror"]
	}
	words, _, dropped, fixed := rw.releaseOptions(n, spec, words)
	if !changed && !fixed {
		return n.Raw
	}
	line := strings.Join(words, " ")
	if n.comment >= 0 {
		line += " " + strings.TrimRightFunc(n.Raw[n.comment:], pySpace)
	}
	if len(dropped) > 0 {
		line = rw.droppedComment(dropped) + "\n" + line
	}
	return line
}

// droppedComment records options a rewrite dropped.
func (rw *rewriter) droppedComment(dropped []string) string {
	return "# not in " + rw.opts.Version.String() + ": " + strings.Join(dropped, " ")
}

// sourceWords are a line's words spelt as in the source, quotes and all.
func sourceWords(n *Node) []string {
	words := make([]string, len(n.toks))
	for i, t := range n.toks {
		words[i] = n.Raw[t.Start:min(t.End, len(n.Raw))]
	}
	return words
}

// releaseOptions renames, translates or drops the options of one line
// that the target release does not take. words are the line's source
// words (possibly already rewritten for the platform); extra are lines
// to add after it; dropped are the source words of dropped options, kept
// in a comment so that nothing disappears without a trace.
func (rw *rewriter) releaseOptions(n *Node, spec *cmdSpec, words []string) (out, extra, dropped []string, changed bool) {
	if !rw.release || spec == nil || (spec.style != styleStrict && spec.style != styleKnown) {
		return words, nil, nil, false
	}
	cmd, v := n.Args[0], rw.opts.Version
	out = []string{words[0]}
	var ntp []string
	nontp := false
	for i := 1; i < len(n.Args); i++ {
		arg := n.Args[i]
		if arg == "--" {
			out = append(out, words[i:]...)
			break
		}
		if !strings.HasPrefix(arg, "--") {
			out = append(out, words[i])
			continue
		}
		opt, val, hasVal := strings.Cut(arg, "=")
		idx, full, _, _, isOpt, err := spec.classify(arg)
		if err != nil {
			out = append(out, words[i])
			continue
		}
		if !isOpt || idx < 0 {
			// unknown here; argparse takes "--opt=a b" for a positional
			// word, which fails all the same
			idx, full = -1, opt
		}
		if alias := rw.preferred(cmd, full); alias != "" {
			w := alias
			if hasVal {
				w += "=" + val
			}
			if !containsWord(out, w) {
				out = append(out, quoteArg(w))
			}
			changed = true
			continue
		}
		if idx >= 0 && optionState(v, cmd, full) == optionOK {
			if !(isRenameTarget(cmd, full) && containsWord(out, words[i])) {
				out = append(out, words[i])
			}
			continue
		}
		// the target does not take it
		other := actElsewhere(cmd, full)
		if other == nil {
			out = append(out, words[i]) // a typo: lint names it
			continue
		}
		changed = true
		// commands/timezone.py F33_Timezone: "replace this option with
		// timesource --ntp-server <server hostname> command invocation,
		// one per NTP server" (and --nontp with --ntp-disable)
		translated := cmd == "timezone" && (full == "--ntpservers" || full == "--nontp") && commandUsable(v, "timesource")
		first, vals := i, []string{val}
		if !hasVal {
			k := valueWords(other, n.Args[i+1:])
			vals = n.Args[i+1 : i+1+k]
			i += k
		}
		switch {
		case !translated:
			dropped = append(dropped, words[first:i+1]...)
		case full == "--ntpservers":
			for _, s := range vals {
				ntp = append(ntp, commaList(s)...)
			}
		default:
			nontp = true
		}
	}
	for _, s := range ntp {
		extra = append(extra, "timesource --ntp-server="+quoteArg(s))
	}
	if nontp {
		extra = append(extra, "timesource --ntp-disable")
	}
	return out, extra, dropped, changed
}

// preferred returns the spelling to write for a renamed option: the new
// one when the target takes it, else the old one if the target takes
// that; "" when opt is already right or not a renamed option.
func (rw *rewriter) preferred(cmd, opt string) string {
	v := rw.opts.Version
	for _, r := range optionRenames {
		if r.cmd != cmd || (opt != r.old && opt != r.new) {
			continue
		}
		for _, cand := range []string{r.new, r.old} {
			if optionState(v, cmd, cand) == optionOK {
				if cand == opt {
					return ""
				}
				return cand
			}
		}
	}
	return ""
}

// actElsewhere finds the option in the releases that have it, latest
// first, to know how many values follow it.
func actElsewhere(cmd, opt string) *act {
	for i := len(lineage) - 1; i >= 0; i-- {
		cmds, secs := lineage[i].tables()
		spec := cmds[cmd]
		if strings.HasPrefix(cmd, "%") {
			spec = secs[cmd]
		}
		if spec == nil {
			continue
		}
		if k, ok := spec.lookup(opt); ok {
			return &spec.acts[k]
		}
	}
	return nil
}

// valueWords is how many of the words after an option argparse gives it.
func valueWords(a *act, rest []string) int {
	isArg := func(i int) bool { return i < len(rest) && (!strings.HasPrefix(rest[i], "-") || rest[i] == "-") }
	switch a.nargs {
	case nargsZero:
		return 0
	case nargsOne:
		return min(1, len(rest))
	case nargsOptional:
		if isArg(0) {
			return 1
		}
		return 0
	case nargsStar, nargsPlus:
		k := 0
		for isArg(k) {
			k++
		}
		return k
	}
	return min(int(a.nargs), len(rest))
}

func isRenameTarget(cmd, opt string) bool {
	for _, r := range optionRenames {
		if r.cmd == cmd && (r.new == opt || r.old == opt) {
			return true
		}
	}
	return false
}

func containsWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}
