//go:build !unix

package distro

import "os"

// lockFile is a no-op where flock(2) does not exist; concurrent imports of
// one name are then the operator's to avoid.
func lockFile(*os.File) error { return nil }
