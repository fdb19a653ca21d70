// Package distro imports install trees, from an ISO image or a directory,
// into kickstand's data directory and registers them as live distros.
//
// An operator should be able to point kickstand at a downloaded DVD image
// and get a bootable distro without root, loop mounts or hand-written YAML
// (seed 001 mounted and copied media by hand). So the ISO is read in
// process (github.com/diskfs/go-diskfs, Rock Ridge names), the tree's
// .treeinfo says where the kernel, initrd, stage2 and repositories are,
// and its checksums are verified while copying.
//
// An import can be interrupted at any point — Ctrl-C, a full disk, a crash
// — without ever leaving a half tree served or a distro registered that
// points at one. Files go into DataDir/distros/.staging-NAME, each synced
// and then recorded in an append-only journal beside it; the directory is
// renamed into place only when every file is staged and verified, and
// registered (distro and default profile in one store transaction) only
// after that. Rerunning the same import skips what the journal recorded.
// Bad input (no kernel, an unreadable or truncated image, a checksum
// mismatch) is an *InputError: nothing is registered and the staging is
// removed, since rerunning cannot fix it.
//
// Limits of the ISO reader: go-diskfs v1.7.0 reads the primary volume
// descriptor only, so names come from Rock Ridge (Joliet is not read; an
// image without Rock Ridge shows upper-case ISO9660 names and is refused for
// lacking a kernel). Its Name() drops a leading or trailing dot, and it
// reaches a file's data only by re-parsing the whole directory, so the
// recorded Rock Ridge name and the data extent are read from its entries
// (see rawEntry). Symlinks in an image are skipped; symlinked files in a
// directory tree are imported as the files they point to, because the HTTP
// side refuses links.
package distro
