// Package demotest checks the README's first command on a fresh clone:
// `make demo` completes, and installs no Debian package but the demo's own
// (scripts/deps.sh demo) and what those depend on. The tests' peers
// (Chromium, Kea, PostgreSQL, nginx, ...) are `make test`'s business.
//
// It needs root (the demo makes a network namespace and boots a VM), so it
// lives apart from the packages' unit tests.
package demotest
