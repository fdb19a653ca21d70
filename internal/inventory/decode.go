package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// A file's YAML is parsed once, into yaml.v3's node tree, and decoded from
// it. yaml.v3 spends nearly all of a 100,000-host file's time building that
// tree, so the block of hosts is cut at its items and parsed in chunks on
// every CPU, each chunk's nodes dropped as soon as its hosts are decoded;
// hosts of the usual shape are decoded without reflection. Anything the
// cutting is not sure of (flow style, anchors and aliases, document markers,
// odd indentation) makes a chunk fail to parse, and the file is then parsed
// whole, so the result never depends on the shortcut.

// parsedFile is what one file declares.
type parsedFile struct {
	cfg   Config // everything but Hosts (main file only)
	hosts hostFile
	// unknown are keys that name no setting and values of the wrong
	// type: reported with the validation errors, so one run shows every
	// problem.
	unknown []error
	// chunks are the keys of its hosts chunks in the chunk cache.
	chunks []uint64
	// inChunk: this is one chunk of a file's hosts, whose type errors
	// send the file to a whole parse (an alias's node, outside the
	// chunk's tree, would be named at the wrong line).
	inChunk bool
}

// hostFile is one file's hosts and, for messages, the line each starts on.
type hostFile struct {
	path  string
	hosts []Host
	lines []int32
}

// chunkBytes is how much of a hosts block one parse takes: small enough
// that the node trees alive at once stay a few times the chunk, large
// enough that starting a parse costs nothing.
const chunkBytes = 1 << 20

// decodeFile parses a main inventory file, or a hosts.d file when
// hostsOnly (where only hosts: is allowed). chunk is the size of a hosts
// chunk; 0 parses the file whole.
func decodeFile(path string, data []byte, hostsOnly bool, chunk int, cc *chunkCache) (*parsedFile, error) {
	if chunk > 0 {
		if b, ok := findHostsBlock(data); ok && b.end-b.start > chunk {
			if pf, err := decodeChunked(path, data, b, hostsOnly, chunk, cc); err == nil {
				return pf, nil
			}
			// Parsed whole below, which reports the error where it is.
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(path, 0, err)
	}
	return decodeTree(path, &doc, hostsOnly, 0, 0)
}

// decodeTree decodes a parsed document. Nodes below line cut get shift
// added to their line (the hosts items that were cut out of the text).
func decodeTree(path string, doc *yaml.Node, hostsOnly bool, cut, shift int) (*parsedFile, error) {
	shiftAfter(doc, cut, shift)
	pf := &parsedFile{hosts: hostFile{path: path}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return pf, nil // an empty file declares nothing
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		if err := decode(top, &pf.cfg); err != nil {
			return nil, typeErrors(path, top, nil, err)
		}
		return pf, nil // null: nothing declared
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: top.Tag, Line: top.Line, Column: top.Column}
	var hostsKey, hostsVal *yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if l, dup := seen[k.Value]; dup && k.Value != "<<" {
			return nil, fmt.Errorf("%s:%d: %s: mapping key already defined at line %d", path, k.Line, k.Value, l)
		}
		seen[k.Value] = k.Line
		switch {
		case k.Value == "hosts" && hostsKey == nil:
			hostsKey, hostsVal = k, v
		case k.Value == "<<" && !hostsOnly:
			// A merge at the top: let yaml.v3 decode the whole
			// document, as it knows merges.
			return decodeSlow(path, doc)
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	if hostsOnly {
		for i := 0; i+1 < len(rest.Content); i += 2 {
			k := rest.Content[i]
			pf.unknown = append(pf.unknown, fmt.Errorf("%s:%d: %s: only hosts belong in a hosts.d file", path, k.Line, k.Value))
		}
	} else {
		if err := pf.decodeOrReport(rest, &pf.cfg, nil); err != nil {
			return nil, err
		}
		unknownFields(rest, reflect.TypeFor[Config](), nil, pf.reportUnknown)
		pf.cfg.applyDefaults()
	}
	if hostsVal != nil {
		var err error
		pf.hosts.hosts, pf.hosts.lines, err = pf.decodeHosts(hostsVal, 0, 0)
		if err != nil {
			return nil, err
		}
	}
	return pf, nil
}

// decodeSlow decodes a document the general way: yaml.v3's decoder for
// everything, then the known-field check.
func decodeSlow(path string, doc *yaml.Node) (*parsedFile, error) {
	pf := &parsedFile{hosts: hostFile{path: path}}
	var c Config
	if err := pf.decodeOrReport(doc.Content[0], &c, nil); err != nil {
		return nil, err
	}
	unknownFields(doc.Content[0], reflect.TypeFor[Config](), nil, pf.reportUnknown)
	pf.hosts.hosts = c.Hosts
	c.Hosts = nil
	pf.hosts.lines = make([]int32, len(pf.hosts.hosts))
	if hv := mapValue(doc.Content[0], "hosts"); hv != nil && hv.Kind == yaml.SequenceNode {
		for i, n := range hv.Content {
			if i < len(pf.hosts.lines) {
				pf.hosts.lines[i] = int32(n.Line)
			}
		}
	}
	for i := range pf.hosts.hosts {
		pf.hosts.hosts[i].applyDefaults()
	}
	c.applyDefaults()
	pf.cfg = c
	return pf, nil
}

func (pf *parsedFile) reportUnknown(path []any, k *yaml.Node, known map[string]reflect.Type) {
	msg := fmt.Sprintf("unknown key %q", k.Value)
	if s := suggestKey(k.Value, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	pf.unknown = append(pf.unknown, fmt.Errorf("%s:%d: %s: %s", pf.hosts.path, k.Line, fieldName(path), msg))
}

// decodeOrReport decodes n into v. Values of the wrong type are problems
// to report with the others (yaml.v3 decodes the rest of the node past
// them), so one mistyped field does not hide the file's other errors;
// anything else stops the file. base is n's path.
func (pf *parsedFile) decodeOrReport(n *yaml.Node, v any, base []any) error {
	err := decode(n, v)
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) || pf.inChunk {
		return yamlError(pf.hosts.path, 0, err)
	}
	pf.unknown = append(pf.unknown, typeErrors(pf.hosts.path, n, base, err))
	return nil
}

// decodeHosts decodes a hosts sequence. lineShift is added to its nodes'
// lines (a chunk's offset in its file); first is the index of its first
// item in the file.
func (pf *parsedFile) decodeHosts(seq *yaml.Node, lineShift, first int) ([]Host, []int32, error) {
	if seq.Kind == yaml.AliasNode && seq.Alias != nil {
		seq = seq.Alias
	}
	if seq.Kind == yaml.ScalarNode && seq.ShortTag() == "!!null" {
		return nil, nil, nil
	}
	if seq.Kind != yaml.SequenceNode {
		var hs []Host
		shiftAfter(seq, 0, lineShift)
		if err := decode(seq, &hs); err != nil {
			return nil, nil, typeErrors(pf.hosts.path, seq, []any{"hosts"}, err)
		}
		return nil, nil, fmt.Errorf("%s:%d: hosts: want a list of hosts", pf.hosts.path, seq.Line)
	}
	hosts := make([]Host, len(seq.Content))
	lines := make([]int32, len(seq.Content))
	for i, n := range seq.Content {
		h := &hosts[i]
		shift := lineShift
		if !decodeHost(n, h) {
			*h = Host{}
			shiftAfter(n, 0, shift)
			shift = 0 // this host's nodes carry their file lines now
			if err := pf.decodeOrReport(n, h, []any{"hosts", first + i}); err != nil {
				return nil, nil, err
			}
			unknownFields(n, reflect.TypeFor[Host](), []any{"hosts", first + i}, pf.reportUnknown)
		}
		h.applyDefaults()
		lines[i] = int32(n.Line + shift)
	}
	return hosts, lines, nil
}

// decodeHost decodes a host of the usual shape (a mapping of known keys to
// plain scalars, lists of scalars and a map of scalars) without
// reflection, exactly as yaml.v3 would. It returns false for anything else
// (tags, aliases, merges, repeated or unknown keys, other shapes), which
// yaml.v3 then decodes and reports on.
func decodeHost(n *yaml.Node, h *Host) bool {
	if n.Kind != yaml.MappingNode || n.Style&yaml.TaggedStyle != 0 || len(n.Content)%2 != 0 {
		return false
	}
	var seen uint32
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" || k.Style&yaml.TaggedStyle != 0 {
			return false
		}
		var s *string
		var l *[]string
		bit := uint32(0)
		switch k.Value {
		case "name":
			s, bit = &h.Name, 1<<0
		case "uuid":
			s, bit = &h.UUID, 1<<1
		case "ipv4":
			s, bit = &h.IPv4, 1<<2
		case "gateway4":
			s, bit = &h.Gateway4, 1<<3
		case "ipv6":
			s, bit = &h.IPv6, 1<<4
		case "gateway6":
			s, bit = &h.Gateway6, 1<<5
		case "timezone":
			s, bit = &h.Timezone, 1<<6
		case "interface":
			s, bit = &h.Interface, 1<<7
		case "platform":
			s, bit = &h.Platform, 1<<8
		case "profile":
			s, bit = &h.Profile, 1<<9
		case "netboot":
			s, bit = &h.Netboot, 1<<10
		case "macs":
			l, bit = &h.MACs, 1<<11
		case "nameservers":
			l, bit = &h.Nameservers, 1<<12
		case "ntp":
			l, bit = &h.NTP, 1<<13
		case "vars":
			bit = 1 << 14
		default:
			return false
		}
		if seen&bit != 0 {
			return false // yaml.v3 reports the repeated key
		}
		seen |= bit
		switch {
		case s != nil:
			val, null, ok := plainScalar(v)
			if !ok {
				return false
			}
			if !null {
				*s = val
			}
		case l != nil:
			if _, null, ok := plainScalar(v); ok && null {
				*l = nil
				continue
			}
			if v.Kind != yaml.SequenceNode || v.Style&yaml.TaggedStyle != 0 {
				return false
			}
			out := make([]string, len(v.Content))
			for j, e := range v.Content {
				val, _, ok := plainScalar(e)
				if !ok {
					return false
				}
				out[j] = val // a null element is ""
			}
			*l = out
		default: // vars
			if _, null, ok := plainScalar(v); ok && null {
				h.Vars = nil
				continue
			}
			if v.Kind != yaml.MappingNode || v.Style&yaml.TaggedStyle != 0 {
				return false
			}
			m := make(map[string]string, len(v.Content)/2)
			for j := 0; j+1 < len(v.Content); j += 2 {
				mk, mv := v.Content[j], v.Content[j+1]
				key, knull, ok1 := plainScalar(mk)
				val, vnull, ok2 := plainScalar(mv)
				if !ok1 || !ok2 || knull || vnull || mk.Tag != "!!str" || key == "<<" {
					return false
				}
				if _, dup := m[key]; dup {
					return false
				}
				m[key] = val
			}
			h.Vars = m
		}
	}
	return true
}

// plainScalar is a scalar without an explicit tag: its text, as yaml.v3
// decodes any such scalar into a string field, and whether it is null.
func plainScalar(n *yaml.Node) (val string, null, ok bool) {
	if n.Kind != yaml.ScalarNode || n.Style&yaml.TaggedStyle != 0 {
		return "", false, false
	}
	if n.Tag == "!!null" {
		return "", true, true
	}
	return n.Value, false, true
}

// hostsBlock is where a block-style hosts: list lies in a file.
type hostsBlock struct {
	keyLine    int   // line of "hosts:" (1-based)
	start, end int   // bytes of the items (and comments among them)
	items      []int // byte offset of each item's "- "
	itemLines  []int // its line
}

var hostsKeyRE = regexp.MustCompile(`^hosts:([ \t]+#.*|[ \t]*)$`)

// findHostsBlock finds the top-level "hosts:" followed by a block
// sequence, and where each of its items starts. It says no for anything
// it is not sure about; the file is then parsed whole.
func findHostsBlock(data []byte) (hostsBlock, bool) {
	var b hostsBlock
	state := 0 // 0 before hosts:, 1 in its items, 2 after
	indent := -1
	content := false // a line other than blanks, comments and --- seen
	line := 0
	for off := 0; off < len(data); {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
			end += off
		} else {
			end = len(data)
		}
		l := bytes.TrimSuffix(data[off:end], []byte("\r"))
		ind := 0
		for ind < len(l) && l[ind] == ' ' {
			ind++
		}
		body := l[ind:]
		blank := len(body) == 0 || body[0] == '#'
		if ind < len(l) && l[ind] == '\t' {
			return b, false
		}
		if !blank && ind == 0 && (bytes.HasPrefix(body, []byte("---")) || bytes.HasPrefix(body, []byte("..."))) {
			if content || state != 0 {
				return b, false // a second document
			}
			off = next
			continue
		}
		if !blank {
			if !content && ind > 0 {
				return b, false // the top mapping is indented
			}
			content = true
			if ind == 0 && bytes.HasPrefix(body, []byte("<<")) {
				return b, false // a merge at the top
			}
		}
		switch state {
		case 0:
			if hostsKeyRE.Match(l) {
				b.keyLine, b.start, state = line, next, 1
			}
		case 1:
			if blank {
				break
			}
			isItem := len(body) > 0 && body[0] == '-' && (len(body) == 1 || body[1] == ' ')
			if indent < 0 {
				if !isItem {
					if ind == 0 {
						// "hosts:" with no items, then the next key.
						b.end, state = off, 2
						break
					}
					return b, false
				}
				indent = ind
			}
			switch {
			case ind == indent && isItem:
				b.items = append(b.items, off)
				b.itemLines = append(b.itemLines, line)
			case ind > indent:
			case ind == 0 && !isItem:
				b.end, state = off, 2
			default:
				return b, false
			}
		case 2:
			if !blank && hostsKeyRE.Match(l) {
				return b, false // a repeated key: yaml.v3 reports it
			}
		}
		off = next
	}
	if state == 1 {
		b.end = len(data)
	}
	return b, state != 0 && len(b.items) > 0
}

// decodeChunked parses the file with its hosts block cut into chunks
// parsed in parallel. Any error sends the caller to a whole parse.
func decodeChunked(path string, data []byte, b hostsBlock, hostsOnly bool, chunk int, cc *chunkCache) (*parsedFile, error) {
	type piece struct {
		from, to int // items
		key      uint64
		hosts    []Host
		lines    []int32
		unknown  []error
		err      error
	}
	// Chunks end where an item's first line hashes to a multiple of 8,
	// once they are half the chunk size: where they are cut depends on
	// the text near the cut, not on what comes before, so an edit leaves
	// the other chunks as they were and the cache finds them.
	var pieces []*piece
	for i := 0; i < len(b.items); {
		j := i + 1
		for ; j < len(b.items); j++ {
			size := b.items[j] - b.items[i]
			if size >= 2*chunk || size >= chunk/2 && cutBefore(data[b.items[j]:]) {
				break
			}
		}
		pieces = append(pieces, &piece{from: i, to: j})
		i = j
	}
	itemEnd := func(i int) int {
		if i < len(b.items) {
			return b.items[i]
		}
		return b.end
	}

	var rest *parsedFile
	var restErr error
	work := make(chan *piece)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				// The first chunk starts right after hosts:, so that
				// every byte of the file goes through some parse.
				from, firstLine := b.items[p.from], b.itemLines[p.from]
				if p.from == 0 {
					from, firstLine = b.start, b.keyLine+1
				}
				text := data[from:itemEnd(p.to)]
				var cached bool
				if p.key, p.hosts, p.lines, cached = cc.get(text, firstLine-1); cached {
					continue
				}
				var doc yaml.Node
				if p.err = yaml.Unmarshal(text, &doc); p.err != nil {
					continue
				}
				if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode || len(doc.Content[0].Content) != p.to-p.from {
					p.err = errors.New("chunk is not the items it was cut at")
					continue
				}
				pf := &parsedFile{hosts: hostFile{path: path}, inChunk: true}
				p.hosts, p.lines, p.err = pf.decodeHosts(doc.Content[0], firstLine-1, p.from)
				p.unknown = pf.unknown
				if p.err == nil && len(p.unknown) == 0 {
					cc.put(p.key, p.hosts, p.lines, firstLine-1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The rest of the file, without the items; its lines after
		// hosts: are shifted back to where they are in the file.
		text := slices.Concat(data[:b.start], data[b.end:])
		var doc yaml.Node
		if restErr = yaml.Unmarshal(text, &doc); restErr != nil {
			return
		}
		rest, restErr = decodeTree(path, &doc, hostsOnly, b.keyLine, bytes.Count(data[b.start:b.end], []byte("\n")))
	}()
	for _, p := range pieces {
		work <- p
	}
	close(work)
	wg.Wait()
	if restErr != nil {
		return nil, restErr
	}
	if len(rest.hosts.hosts) > 0 {
		return nil, errors.New("hosts outside the block")
	}
	n := len(b.items)
	rest.hosts.hosts, rest.hosts.lines = make([]Host, 0, n), make([]int32, 0, n)
	for _, p := range pieces {
		if p.err != nil {
			return nil, p.err
		}
		rest.hosts.hosts = append(rest.hosts.hosts, p.hosts...)
		rest.hosts.lines = append(rest.hosts.lines, p.lines...)
		rest.unknown = append(rest.unknown, p.unknown...)
		if cc != nil {
			rest.chunks = append(rest.chunks, p.key)
		}
	}
	return rest, nil
}

// decode is Node.Decode, which yaml.v3 lets panic on some inputs (a
// mapping as a map key): a bad file is an error, never a crash.
func decode(n *yaml.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("line %d: cannot decode: %v", n.Line, r)
		}
	}()
	return n.Decode(v)
}

// cutBefore says whether a chunk may end before the item starting at
// text: FNV-1a of its first line, a multiple of 8.
func cutBefore(text []byte) bool {
	h := uint32(2166136261)
	for _, c := range text {
		if c == '\n' {
			break
		}
		h = (h ^ uint32(c)) * 16777619
	}
	return h%8 == 0
}

// chunkCache keeps the hosts of each chunk of hosts text a load parsed,
// by the text's hash, so that the next load of a changed file parses only
// the chunks whose text changed: a one-host edit of a 12 MB file parses
// about a megabyte. A nil *chunkCache caches nothing.
type chunkCache struct {
	seed         maphash.Seed
	mu           sync.Mutex
	old, cur     map[uint64]cachedChunk
	hits, misses int // since the last rotate
}

type cachedChunk struct {
	hosts []Host
	lines []int32 // relative to the line before the chunk
}

func newChunkCache() *chunkCache {
	return &chunkCache{seed: maphash.MakeSeed(), cur: map[uint64]cachedChunk{}}
}

// get returns text's key and, if cached, its hosts with their lines
// moved to start after line base.
func (c *chunkCache) get(text []byte, base int) (uint64, []Host, []int32, bool) {
	if c == nil {
		return 0, nil, nil, false
	}
	key := maphash.Bytes(c.seed, text)
	c.mu.Lock()
	ch, ok := c.cur[key]
	if !ok {
		if ch, ok = c.old[key]; ok {
			c.cur[key] = ch
		}
	}
	if ok {
		c.hits++
	} else {
		c.misses++
	}
	c.mu.Unlock()
	if !ok {
		return key, nil, nil, false
	}
	lines := make([]int32, len(ch.lines))
	for i, l := range ch.lines {
		lines[i] = l + int32(base)
	}
	return key, ch.hosts, lines, true
}

func (c *chunkCache) put(key uint64, hosts []Host, lines []int32, base int) {
	if c == nil {
		return
	}
	rel := make([]int32, len(lines))
	for i, l := range lines {
		rel[i] = l - int32(base)
	}
	c.mu.Lock()
	c.cur[key] = cachedChunk{hosts: hosts, lines: rel}
	c.mu.Unlock()
}

// keep marks a file's chunks as in use by this load.
func (c *chunkCache) keep(keys []uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for _, k := range keys {
		if ch, ok := c.old[k]; ok {
			c.cur[k] = ch
		}
	}
	c.mu.Unlock()
}

// rotate begins a load: chunks the previous load did not use are dropped
// at the next rotate.
func (c *chunkCache) rotate() {
	c.mu.Lock()
	c.old, c.cur = c.cur, map[uint64]cachedChunk{}
	c.hits, c.misses = 0, 0
	c.mu.Unlock()
}

// shiftAfter adds by to the line of every node in n's tree that is below
// line after.
func shiftAfter(n *yaml.Node, after, by int) {
	if by == 0 || n == nil {
		return
	}
	if n.Line > after {
		n.Line += by
	}
	for _, c := range n.Content {
		shiftAfter(c, after, by)
	}
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns yaml.v3's "line N: ..." messages into "file:N: ...".
func yamlError(path string, shift int, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		if g := yamlLineRE.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			errs = append(errs, fmt.Errorf("%s:%d: %s", path, n+shift, g[2]))
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %s", path, strings.TrimPrefix(m, "yaml: ")))
	}
	return errors.Join(errs...)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownFields reports every mapping key under n that names no field of
// t (yaml.v3's KnownFields, with the field's path and line).
func unknownFields(n *yaml.Node, t reflect.Type, path []any, report func([]any, *yaml.Node, map[string]reflect.Type)) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	at := func(p any) []any { return append(slices.Clip(path), p) }
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				unknownFields(v, t, path, report)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				report(at(k.Value), k, fields)
				continue
			}
			unknownFields(v, ft, at(k.Value), report)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			unknownFields(c, t.Elem(), at(i), report)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknownFields(n.Content[i+1], t.Elem(), at(n.Content[i].Value), report)
		}
	}
}

// yamlFields maps a struct's YAML keys to their field types, as yaml.v3
// names them (the tag's name, else the lower-cased field name).
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// fieldName writes a path such as hosts[3].macs[0].
func fieldName(path []any) string {
	var name strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&name, "[%d]", p)
		default:
			if i > 0 {
				name.WriteByte('.')
			}
			fmt.Fprint(&name, p)
		}
	}
	return name.String()
}

var typeErrorRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// typeErrors turns yaml.v3's type errors under n (whose path is base) into
// "file:line: field: message", the field found by its line, and the Go
// type named as the operator wrote it ("a list", not "[]string").
func typeErrors(path string, n *yaml.Node, base []any, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return yamlError(path, 0, err)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, m := range te.Errors {
		g := yamlLineRE.FindStringSubmatch(m)
		if g == nil {
			errs = append(errs, fmt.Errorf("%s: %s", path, m))
			continue
		}
		line, _ := strconv.Atoi(g[1])
		msg := g[2]
		if t := typeErrorRE.FindStringSubmatch(msg); t != nil {
			// The value is not quoted: it may be a secret (a password
			// hash where a mapping of vars belongs).
			msg = fmt.Sprintf("want %s, not %s", kindName(t[3]), tagName(t[1]))
		}
		field := fieldName(append(slices.Clip(base), pathAtLine(n, line)...))
		if field == "" {
			errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, msg))
			continue
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", path, line, field, msg))
	}
	return errors.Join(errs...)
}

// tagName says what a YAML tag is in words.
func tagName(tag string) string {
	switch tag {
	case "map":
		return "a mapping"
	case "seq":
		return "a list"
	case "str":
		return "a string"
	case "int", "float":
		return "a number"
	case "bool":
		return "true or false"
	case "null":
		return "nothing"
	}
	return "!!" + tag
}

// kindName says what a Go type is in YAML terms.
func kindName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "inventory."):
		return "a mapping"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "a " + goType
}

// pathAtLine is the path, below n, of the deepest key or item that starts
// on line: where a message about that line belongs.
func pathAtLine(n *yaml.Node, line int) []any {
	for n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line || v.Line <= line && line <= lastLine(v) {
				return append([]any{k.Value}, pathAtLine(v, line)...)
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if c.Line <= line && line <= lastLine(c) {
				return append([]any{i}, pathAtLine(c, line)...)
			}
		}
	}
	return nil
}

// lastLine is the last line a node's tree starts a node on.
func lastLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, lastLine(c))
	}
	return l
}

// keyAliases are the names other provisioning tools (Cobbler, Foreman,
// MAAS, netplan, ifcfg) give kickstand's keys: a key that is one of them
// is a habit, not a typo, and edit distance would not find its match.
var keyAliases = map[string][]string{
	"ipv4":        {"ip", "ipaddr", "ip_address", "ipaddress", "address", "ip4", "ipv4_address", "addr"},
	"ipv6":        {"ip6", "ipv6addr", "ipv6_address", "ipv6address", "addr6"},
	"gateway4":    {"gateway", "gw", "router", "default_gateway", "ipv4_gateway"},
	"gateway6":    {"gw6", "ipv6_gateway", "ipv6gateway", "ipv6_default_gateway"},
	"macs":        {"mac", "mac_address", "macaddress", "hwaddr", "hw_address", "macaddr"},
	"nameservers": {"dns", "dns_servers", "name_servers", "nameserver", "resolvers", "name-servers"},
	"ntp":         {"ntp_servers", "ntpservers", "timeservers", "time_servers"},
	"timezone":    {"tz", "time_zone"},
	"interface":   {"iface", "device", "nic", "interface_name", "ksdevice"},
	"name":        {"hostname", "fqdn", "host"},
	"netboot":     {"state", "netboot_enabled", "status"},
	"vars":        {"ks_meta", "autoinstall_meta", "variables", "params", "parameters", "meta"},
	"kernel_args": {"kernel_options", "kopts", "append", "cmdline", "kernel_cmdline"},
	"kickstart":   {"autoinstall", "template", "ks"},
	"initrd":      {"initrds", "initramfs"},
	"http":        {"listen", "http_listen"},
	"subnets":     {"subnet", "networks"},
	"interfaces":  {"interface"},
}

// suggestKey names the known key an unknown one most likely meant: a key
// other tools use for it, or one a typo or two away.
func suggestKey(key string, known map[string]reflect.Type) string {
	k := strings.ToLower(key)
	if _, ok := known[k]; ok {
		return k // a case slip: keys are lower case
	}
	for want, aliases := range keyAliases {
		if _, ok := known[want]; ok && slices.Contains(aliases, k) {
			return want
		}
	}
	best, bestD := "", 3
	if len(k) <= 4 {
		bestD = 2
	}
	for name := range known {
		if d := editDistance(k, name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
