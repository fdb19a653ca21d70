package store

import (
	"errors"
	"time"
)

// ErrExists is returned when creating an object whose name is taken.
var ErrExists = errors.New("already exists")

// APIToken is an operator credential for the REST API. Only the SHA-256 of
// the secret is kept: a copy of the database (a backup, a PostgreSQL
// replica) gives nobody the right to change host states.
type APIToken struct {
	Name      string    `json:"name"`
	Hash      []byte    `json:"-"` // SHA-256 of the secret
	CreatedAt time.Time `json:"created_at"`
}
