package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

func (f *Fake) CreateAPIToken(_ context.Context, t store.APIToken) error {
	if t.Name == "" || len(t.Hash) == 0 {
		return fmt.Errorf("create api token: name and hash are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokens == nil {
		f.tokens = map[string]store.APIToken{}
	}
	if _, ok := f.tokens[t.Name]; ok {
		return fmt.Errorf("create api token %s: %w", t.Name, store.ErrExists)
	}
	for _, o := range f.tokens {
		if bytes.Equal(o.Hash, t.Hash) {
			return fmt.Errorf("create api token %s: hash already stored", t.Name)
		}
	}
	t.Hash = bytes.Clone(t.Hash)
	t.CreatedAt = time.UnixMilli(t.CreatedAt.UnixMilli())
	f.tokens[t.Name] = t
	return nil
}

func (f *Fake) APITokens(context.Context) ([]store.APIToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.APIToken
	for _, t := range f.tokens {
		t.Hash = bytes.Clone(t.Hash)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Fake) RevokeAPIToken(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tokens[name]; !ok {
		return fmt.Errorf("revoke api token %s: %w", name, store.ErrNotFound)
	}
	delete(f.tokens, name)
	return nil
}

func (f *Fake) LastEventID(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.events.evs); n > 0 {
		return f.events.evs[n-1].ID, nil
	}
	return 0, nil
}

func (Broken) CreateAPIToken(context.Context, store.APIToken) error { return ErrBroken }
func (Broken) APITokens(context.Context) ([]store.APIToken, error)  { return nil, ErrBroken }
func (Broken) RevokeAPIToken(context.Context, string) error         { return ErrBroken }
func (Broken) LastEventID(context.Context) (int64, error)           { return 0, ErrBroken }

// RunAPITokens is the API-token part of the contract, with the event
// cursor the API's live stream starts from.
func RunAPITokens(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

	t.Run("APITokens", func(t *testing.T) {
		s, reopen := open(t)
		if got, err := s.APITokens(ctx); err != nil || len(got) != 0 {
			t.Fatalf("APITokens of an empty store = %v, %v", got, err)
		}
		if err := s.CreateAPIToken(ctx, store.APIToken{Name: "ops", Hash: hash("secret-1"), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAPIToken(ctx, store.APIToken{Name: "ci", Hash: hash("secret-2"), CreatedAt: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAPIToken(ctx, store.APIToken{Name: "ops", Hash: hash("secret-3"), CreatedAt: now}); !errors.Is(err, store.ErrExists) {
			t.Errorf("second token named ops: err = %v, want ErrExists", err)
		}
		if err := s.CreateAPIToken(ctx, store.APIToken{Name: "", Hash: hash("x"), CreatedAt: now}); err == nil {
			t.Error("token without a name accepted")
		}
		if err := s.CreateAPIToken(ctx, store.APIToken{Name: "nohash", CreatedAt: now}); err == nil {
			t.Error("token without a hash accepted")
		}
		if reopen != nil {
			s = reopen()
		}
		got, err := s.APITokens(ctx)
		if err != nil || len(got) != 2 {
			t.Fatalf("APITokens = %+v, %v", got, err)
		}
		if got[0].Name != "ci" || got[1].Name != "ops" {
			t.Errorf("not ordered by name: %+v", got)
		}
		if !bytes.Equal(got[1].Hash, hash("secret-1")) || !got[1].CreatedAt.Equal(now) {
			t.Errorf("ops = %x at %v, want %x at %v", got[1].Hash, got[1].CreatedAt, hash("secret-1"), now)
		}
		if err := s.RevokeAPIToken(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAPIToken(ctx, "ops"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second revoke: err = %v, want ErrNotFound", err)
		}
		if got, _ := s.APITokens(ctx); len(got) != 1 || got[0].Name != "ci" {
			t.Errorf("after revoke: %+v", got)
		}
		// A revoked name can be used again.
		if err := s.CreateAPIToken(ctx, store.APIToken{Name: "ops", Hash: hash("secret-4"), CreatedAt: now}); err != nil {
			t.Errorf("recreate ops: %v", err)
		}
	})

	t.Run("LastEventID", func(t *testing.T) {
		s, _ := open(t)
		if id, err := s.LastEventID(ctx); err != nil || id != 0 {
			t.Fatalf("LastEventID of an empty store = %d, %v", id, err)
		}
		evs := []store.Event{{Host: "a", At: now, Kind: "k"}, {Host: "", At: now, Kind: "k"}, {Host: "b", At: now, Kind: "k"}}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		all, err := s.Events(ctx, "", 0, 0)
		if err != nil || len(all) != 3 {
			t.Fatalf("Events = %v, %v", all, err)
		}
		if id, err := s.LastEventID(ctx); err != nil || id != all[2].ID {
			t.Errorf("LastEventID = %d, %v; want %d", id, err, all[2].ID)
		}
	})
}
