package distro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// The journal records an import's progress beside its staging directory,
// one JSON object per line, appended as each file becomes durable. Appending
// keeps the cost per file constant on trees of thousands of packages, and a
// line torn by a crash is simply ignored: that file is copied again.
//
//	{"kind":"header","version":1,"name":"centos7.2","source":"iso:/x.iso:...","link":false}
//	{"kind":"file","path":"images/pxeboot/vmlinuz","size":5000,"mtime":...,"verified":"sha256"}
//	{"kind":"placed"}
type journalRecord struct {
	Kind     string `json:"kind"`
	Version  int    `json:"version,omitempty"`
	Name     string `json:"name,omitempty"`
	Source   string `json:"source,omitempty"`
	Link     bool   `json:"link,omitempty"`
	Path     string `json:"path,omitempty"`
	Size     int64  `json:"size,omitempty"`
	MTime    int64  `json:"mtime,omitempty"`
	Verified string `json:"verified,omitempty"`
}

const journalVersion = 1

type journal struct {
	path   string
	f      *os.File
	done   map[string]journalRecord
	placed bool
	// fresh is set when the journal was started anew (no usable previous
	// one), so the staging directory holds nothing worth keeping.
	fresh bool
}

// openJournal opens (and locks) the journal at p. A journal for another
// source, link mode or format is discarded, and with it what it recorded.
func openJournal(p string, hdr journalRecord) (*journal, error) {
	hdr.Kind, hdr.Version = "header", journalVersion
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &journal{path: p, f: f, done: map[string]journalRecord{}}
	if err := j.start(hdr); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", p, err)
	}
	return j, nil
}

func (j *journal) start(hdr journalRecord) error {
	if err := lockFile(j.f); err != nil {
		return fmt.Errorf("another import of this name is running: %w", err)
	}
	data, err := io.ReadAll(j.f)
	if err != nil {
		return err
	}
	valid, ok := j.load(data, hdr)
	if !ok {
		valid = 0
		j.fresh, j.done, j.placed = true, map[string]journalRecord{}, false
	}
	// Drop a torn tail, so that new records start on a line of their own.
	if err := j.f.Truncate(int64(valid)); err != nil {
		return err
	}
	if !ok {
		return j.append(hdr)
	}
	return nil
}

// load reads a previous journal and returns how many bytes of it are whole
// records; ok is false when there is none for this header.
func (j *journal) load(data []byte, hdr journalRecord) (valid int, ok bool) {
	first := true
	for len(data[valid:]) > 0 {
		line, _, complete := bytes.Cut(data[valid:], []byte("\n"))
		var r journalRecord
		if !complete || json.Unmarshal(line, &r) != nil {
			break // torn by a crash: it and anything after it are dropped
		}
		if first {
			if r != hdr {
				return 0, false
			}
			first = false
		}
		switch r.Kind {
		case "file":
			j.done[r.Path] = r
		case "placed":
			j.placed = true
		}
		valid += len(line) + 1
	}
	return valid, !first
}

func (j *journal) append(r journalRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// markPlaced records that the tree is in its final place; it is synced
// because a rerun relies on it to register instead of refusing the name.
func (j *journal) markPlaced() error {
	if err := j.append(journalRecord{Kind: "placed"}); err != nil {
		return err
	}
	j.placed = true
	return j.f.Sync()
}

func (j *journal) close() error { return j.f.Close() }

// remove deletes the journal; the import is over, finished or abandoned.
func (j *journal) remove() error {
	j.f.Close()
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// journalPlaced reports whether the journal at p is one for hdr that says
// its tree was moved into place, without locking or changing it.
func journalPlaced(p string, hdr journalRecord) bool {
	data, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	j := &journal{done: map[string]journalRecord{}}
	hdr.Kind, hdr.Version = "header", journalVersion
	_, ok := j.load(data, hdr)
	return ok && j.placed
}
