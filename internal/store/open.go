package store

import (
	"errors"
	"net/url"
	"strings"
)

// ErrUnavailable wraps errors that mean the store's database cannot be
// reached right now (PostgreSQL down, restarting, or the network to it).
// Nothing of the failed call was committed. The DHCP server must then
// refuse new allocations rather than guess; the store reconnects by itself
// on a later call once the database is back.
var ErrUnavailable = errors.New("store unavailable")

// IsPostgres reports whether spec names a PostgreSQL store rather than a
// directory.
func IsPostgres(spec string) bool {
	l := strings.ToLower(spec)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Redact returns spec fit for logs and messages: a PostgreSQL URL without
// its password, a directory as it is.
func Redact(spec string) string {
	if !IsPostgres(spec) {
		return spec
	}
	u, err := url.Parse(spec)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
