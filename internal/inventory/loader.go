package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultHostsDir is the hosts directory looked for beside the main file.
const DefaultHostsDir = "hosts.d"

// Loader loads an inventory again and again, re-reading only the files
// whose size, modification time or inode changed since its last load.
// Its methods may be called from several goroutines.
type Loader struct {
	Path string
	// Known, when set, names the live objects the file may reference;
	// it is given the file's config (its server section says where the
	// store is) before the file is checked.
	Known func(*Config) (Known, error)

	mu     sync.Mutex
	cache  map[string]cachedFile
	chunks *chunkCache
	// last is the config of the last load if it succeeded, with the
	// host files it read: what an unchanged directory loads to.
	last  *Config
	names []string
}

type cachedFile struct {
	stamp fileStamp
	pf    *parsedFile
}

// fileStamp tells a changed file from an unchanged one without reading it.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(st fs.FileInfo) fileStamp {
	return fileStamp{size: st.Size(), mtime: st.ModTime(), ino: inode(st)}
}

// Load reads the main file and the hosts directory, re-using what it
// parsed before for files that did not change (all files are read again
// when reread is set), and validates the whole. On error nothing of the
// previous load is lost: the next Load starts from the same cache.
func (l *Loader) Load(reread bool) (*Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.chunks == nil {
		l.chunks = newChunkCache()
	}
	l.chunks.rotate()
	next := map[string]cachedFile{}
	data := map[string][]byte{}
	var mu sync.Mutex // guards next and data
	main, err := l.read(l.Path, reread, next, data, &mu)
	if err != nil {
		return nil, err
	}
	dir, explicit := main.cfg.Server.HostsDir, true
	if dir == "" {
		dir, explicit = DefaultHostsDir, false
	}
	dir = (&Config{Path: l.Path}).Abs(dir)
	names, err := hostFiles(dir)
	if err != nil && (explicit || !errors.Is(err, fs.ErrNotExist)) {
		if !explicit {
			return nil, fmt.Errorf("%s: %w", l.Path, err)
		}
		v := validator{file: l.Path}
		v.errf([]any{"server", "hosts_dir"}, "%v", err)
		return nil, v.errs[0]
	}
	// Files are parsed in parallel: a first start of 100 files uses
	// every CPU, and a large file is split further by decodeFile.
	pfs := make([]*parsedFile, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			pfs[i], errs[i] = l.read(name, reread, next, data, &mu)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		l.last = nil
		return nil, err
	}
	if len(data) == 0 && l.last != nil && slices.Equal(names, l.names) {
		return l.last, nil // nothing read: nothing changed
	}
	l.cache = next
	c, err := assemble(l.Path, main, pfs, data, l.Known)
	l.last, l.names = c, names
	return c, err
}

// IsHostFile says whether a name in the hosts directory is a host file:
// *.yaml or *.yml, not hidden (editors' temporary and swap files are).
func IsHostFile(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"))
}

// hostFiles lists dir's host files in name order.
func hostFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !IsHostFile(n) {
			continue
		}
		if !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	slices.Sort(out)
	return out, nil
}

// read parses one file, or takes it from the cache if it did not change.
func (l *Loader) read(path string, reread bool, next map[string]cachedFile, data map[string][]byte, mu *sync.Mutex) (*parsedFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	stamp := stampOf(st)
	if c, ok := l.cache[path]; ok && c.stamp == stamp && !reread {
		mu.Lock()
		next[path] = c
		mu.Unlock()
		l.chunks.keep(c.pf.chunks)
		return c.pf, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	pf, err := decodeFile(path, b, path != l.Path, chunkBytes, l.chunks)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	next[path], data[path] = cachedFile{stamp: stamp, pf: pf}, b
	mu.Unlock()
	return pf, nil
}

// WatchPaths are what a change of the inventory shows in: the main file
// and the hosts directory (which need not exist yet).
func (c *Config) WatchPaths() []string {
	dir := c.Server.HostsDir
	if dir == "" {
		dir = DefaultHostsDir
	}
	return []string{c.Path, c.Abs(dir)}
}

// HostFile says which file, and line, declares the named host ("" if none).
func (c *Config) HostFile(name string) (string, int) {
	for _, f := range c.hostFiles {
		for j := range f.hosts {
			if f.hosts[j].Name == name {
				return f.path, int(f.lines[j])
			}
		}
	}
	return "", 0
}

// ChangedHosts names the hosts that differ between two configs: added,
// removed, or declared differently. A host moved from one file to another
// unchanged is not among them.
func ChangedHosts(old, cur *Config) []string {
	if old == cur {
		return nil
	}
	prev := make(map[string]*Host, len(old.Hosts))
	for i := range old.Hosts {
		prev[old.Hosts[i].Name] = &old.Hosts[i]
	}
	var out []string
	for i := range cur.Hosts {
		h := &cur.Hosts[i]
		if p, ok := prev[h.Name]; !ok || !p.Equal(h) {
			out = append(out, h.Name)
		}
		delete(prev, h.Name)
	}
	for n := range prev {
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ServerOnly reads what it can of the main file's server section, with
// the defaults, and nothing else: where the data directory and the store
// are when the file as a whole is refused. Commands then work from the
// last good inventory the store holds (kickstand host list, set-state)
// while the operator fixes the file. Anything unreadable takes its
// default.
func ServerOnly(path string) *Config {
	c := &Config{Path: path}
	if b, err := os.ReadFile(path); err == nil {
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) == nil {
			if s := mapValue(docRoot(&doc), "server"); s != nil {
				decode(s, &c.Server) // a wrong value keeps its default
			}
		}
	}
	c.applyDefaults()
	return c
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}
