package storetest

import (
	"context"
	"testing"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

func TestFake(t *testing.T) {
	open := func(t *testing.T) (store.Store, func() store.Store) { return NewFake(), nil }
	Run(t, open)
	RunLeases(t, open)
}

func TestSQLite(t *testing.T) {
	open := Opener(func(t *testing.T) (store.Store, func() store.Store) {
		dir := t.TempDir()
		s, err := sqlstore.OpenSQLite(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		cur := store.Store(s)
		t.Cleanup(func() { cur.Close() })
		return s, func() store.Store {
			cur.Close()
			s2, err := sqlstore.OpenSQLite(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			cur = s2
			return s2
		}
	})
	Run(t, open)
	RunLeases(t, open)
}

func TestSQLiteMemory(t *testing.T) {
	open := Opener(func(t *testing.T) (store.Store, func() store.Store) {
		s, err := sqlstore.OpenSQLiteMemory(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, nil
	})
	Run(t, open)
	RunLeases(t, open)
}

// Compile-time checks that every implementation satisfies the interface.
var (
	_ store.Store = (*sqlstore.SQL)(nil)
	_ store.Store = (*Fake)(nil)
	_ store.Store = Broken{}
)
