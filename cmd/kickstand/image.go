package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/initrd"
)

// newImageCmd is `kickstand image`: inspect and change initrd and squashfs images without root
// or loop mounts. The work is in internal/initrd; this only parses flags and names files.
func newImageCmd(g *globals) *cobra.Command {
	img := &cobra.Command{
		Use:   "image",
		Short: "List, extract, pack and extend initrd images; list squashfs stage2 images",
	}

	var long bool
	lsCmd := &cobra.Command{
		Use:   "ls [-l] IMAGE",
		Short: "List an initrd per segment (like cpio -t) or a squashfs image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			magic := make([]byte, 4)
			n, _ := io.ReadFull(f, magic)
			if initrd.IsSquashfs(magic[:n]) {
				entries, err := initrd.ListSquashfs(args[0])
				if err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), squashListing(entries), func(w io.Writer) error {
					return initrd.WriteSquashListing(w, entries)
				})
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			segs, err := initrd.List(f, initrd.Limits{})
			// What was read before an error is still worth seeing.
			werr := g.emit(cmd.OutOrStdout(), initrdListing(segs), func(w io.Writer) error {
				return initrd.WriteListing(w, segs, long)
			})
			if werr != nil {
				return werr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	lsCmd.Flags().BoolVarP(&long, "long", "l", false, "long listing: mode, links, owner, size, mtime (UTC), link target (-o json and yaml always have them)")

	var ex initrd.ExtractOptions
	extractCmd := &cobra.Command{
		Use:   "extract [--segment N] IMAGE DIR",
		Short: "Unpack an initrd into DIR (all segments in order, as the kernel does, or one)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			errOut := cmd.ErrOrStderr()
			ex.Progress = func(n int, b int64) { fmt.Fprintf(errOut, "extract: %d entries, %d bytes\n", n, b) }
			st, err := initrd.Extract(cmd.Context(), bufio.NewReaderSize(f, 1<<20), args[1], ex)
			for _, s := range st.Skipped {
				fmt.Fprintf(errOut, "extract: skipped %s (device nodes need root; sockets are never created)\n", s)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	extractCmd.Flags().IntVar(&ex.Segment, "segment", -1, "extract only this segment (0 is the first)")
	extractCmd.Flags().BoolVar(&ex.Owner, "owner", os.Geteuid() == 0, "apply the archive's owners (default when root)")

	var out, comp string
	var keepMtime bool
	packCmd := &cobra.Command{
		Use:   "pack DIR --out OUT [--compress gzip|xz|zstd|none]",
		Short: "Pack DIR into one deterministic initrd segment (owners 0:0, mtimes 0)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			c, err := initrd.ParseCompression(comp)
			if err != nil {
				return err
			}
			return writeAtomic(out, func(w io.Writer) error { return initrd.Pack(w, args[0], c, keepMtime) })
		},
	}
	packCmd.Flags().StringVar(&out, "out", "", "output file")
	packCmd.Flags().StringVar(&comp, "compress", "gzip", "gzip, xz, zstd or none")
	packCmd.Flags().BoolVar(&keepMtime, "keep-mtime", false, "record the files' mtimes instead of 0")
	packCmd.MarkFlagRequired("out")

	var adds []string
	var aOut, aComp string
	appendCmd := &cobra.Command{
		Use:   "append IMAGE --add DEST=SRCPATH ... --out OUT [--compress gzip|xz|zstd|none]",
		Short: "Copy IMAGE and append an overlay segment holding the added files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			c, err := initrd.ParseCompression(aComp)
			if err != nil {
				return err
			}
			var files []initrd.File
			for _, a := range adds {
				fs, err := addedFiles(a)
				if err != nil {
					return err
				}
				files = append(files, fs...)
			}
			overlay, err := initrd.Overlay(files, c)
			if err != nil {
				return err
			}
			base, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer base.Close()
			if err := writeAtomic(aOut, func(w io.Writer) error { return initrd.Append(w, base, overlay) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "append: %d files in a %d-byte %s overlay after %s\n", len(files), len(overlay), c, args[0])
			return nil
		},
	}
	appendCmd.Flags().StringArrayVar(&adds, "add", nil, "DEST=SRCPATH: put the file (or directory tree) SRCPATH at DEST in the image; repeatable")
	appendCmd.Flags().StringVar(&aOut, "out", "", "output file")
	appendCmd.Flags().StringVar(&aComp, "compress", "gzip", "overlay compression: gzip, xz, zstd or none")
	appendCmd.MarkFlagRequired("add")
	appendCmd.MarkFlagRequired("out")

	updates := &cobra.Command{Use: "updates", Short: "Anaconda updates images (inst.updates=)"}
	var uOut string
	updatesBuild := &cobra.Command{
		Use:   "build DIR [--out updates.img]",
		Short: "Build a deterministic gzip cpio updates.img from DIR, laid out like the stage2 root",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			files, err := initrd.FilesFromDir(args[0], false)
			if err != nil {
				return err
			}
			data, err := initrd.UpdatesImage(files)
			if err != nil {
				return err
			}
			return writeAtomic(uOut, func(w io.Writer) error { _, err := w.Write(data); return err })
		},
	}
	updatesBuild.Flags().StringVar(&uOut, "out", "updates.img", "output file")
	updates.AddCommand(updatesBuild)

	img.AddCommand(lsCmd, extractCmd, packCmd, appendCmd, updates)
	return img
}

// addedFiles turns one --add DEST=SRCPATH into files: a file keeps its mode; a directory adds
// its whole tree under DEST.
func addedFiles(spec string) ([]initrd.File, error) {
	dest, src, ok := strings.Cut(spec, "=")
	if !ok || dest == "" || src == "" {
		return nil, fmt.Errorf("--add %q: want DEST=SRCPATH", spec)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("--add %s: %w", dest, err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("--add %s: %w", dest, err)
		}
		return []initrd.File{{Path: dest, Mode: fi.Mode(), Data: data}}, nil
	}
	files, err := initrd.FilesFromDir(src, false)
	if err != nil {
		return nil, fmt.Errorf("--add %s: %w", dest, err)
	}
	for i := range files {
		files[i].Path = path.Join(dest, files[i].Path)
	}
	return append(files, initrd.File{Path: dest, Mode: fi.Mode()}), nil
}

// writeAtomic writes OUT through a temporary file in the same directory, so an interrupted or
// failed run never leaves a half-written image under the real name.
func writeAtomic(out string, write func(io.Writer) error) error {
	if out == "" {
		return fmt.Errorf("no output file (--out)")
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// imageListing is `image ls -o json|yaml`: every field the long listing
// shows, for an initrd per segment, for a squashfs image as one list.
type imageListing struct {
	Format   string         `json:"format"` // initrd or squashfs
	Segments []imageSegment `json:"segments,omitempty"`
	Entries  []imageEntry   `json:"entries,omitempty"`
}

type imageSegment struct {
	Index       int          `json:"index"`
	Compression string       `json:"compression"`
	Offset      int64        `json:"offset"`
	Length      int64        `json:"length"`
	Entries     []imageEntry `json:"entries"`
}

type imageEntry struct {
	Path  string    `json:"path"`
	Mode  string    `json:"mode"` // as ls -l writes it
	Nlink uint32    `json:"nlink,omitempty"`
	UID   uint32    `json:"uid"`
	GID   uint32    `json:"gid"`
	Size  int64     `json:"size"`
	Rdev  string    `json:"rdev,omitempty"` // "major,minor" of a device node
	Mtime time.Time `json:"mtime"`
	Link  string    `json:"link,omitempty"`
}

func initrdListing(segs []initrd.Segment) imageListing {
	l := imageListing{Format: "initrd", Segments: []imageSegment{}}
	for _, s := range segs {
		js := imageSegment{Index: s.Index, Compression: string(s.Compression), Offset: s.Offset, Length: s.Length, Entries: []imageEntry{}}
		for _, h := range s.Entries {
			e := imageEntry{Path: h.Name, Mode: initrd.ModeString(h.Mode), Nlink: h.Nlink, UID: h.UID, GID: h.GID,
				Size: h.Size, Mtime: time.Unix(h.Mtime, 0).UTC(), Link: h.Link}
			if h.Mode&fs.ModeDevice != 0 {
				e.Rdev = fmt.Sprintf("%d,%d", h.RdevMajor, h.RdevMinor)
			}
			js.Entries = append(js.Entries, e)
		}
		l.Segments = append(l.Segments, js)
	}
	return l
}

func squashListing(entries []initrd.SquashEntry) imageListing {
	l := imageListing{Format: "squashfs", Entries: []imageEntry{}}
	for _, e := range entries {
		l.Entries = append(l.Entries, imageEntry{Path: e.Path, Mode: initrd.ModeString(e.Mode), Size: e.Size, Mtime: e.ModTime.UTC(), Link: e.Link})
	}
	return l
}
