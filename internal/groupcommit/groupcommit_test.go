package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// Concurrent callers share commits, each returns only once its value is
// committed, with its commit's error, and the group ends idle.
func TestGroupsConcurrentCallers(t *testing.T) {
	var mu sync.Mutex
	var committed []int
	calls := 0
	g := &Group[int]{Commit: func(ctx context.Context, batch []int) error {
		time.Sleep(20 * time.Millisecond) // a commit behind a busy disk
		mu.Lock()
		defer mu.Unlock()
		calls++
		if slices.Contains(batch, -1) {
			return errors.New("bad batch")
		}
		committed = append(committed, batch...)
		return nil
	}}
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Do(context.Background(), i); err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(committed, i) {
				t.Errorf("%d returned before it was committed", i)
			}
		}()
	}
	wg.Wait()
	if len(committed) != 100 {
		t.Errorf("%d values committed, want 100", len(committed))
	}
	if calls > 20 {
		t.Errorf("%d commits for 100 concurrent callers: not grouped", calls)
	}
	t.Logf("100 callers in %d commits", calls)
	if err := g.Do(context.Background(), -1); err == nil {
		t.Error("a failed commit's caller got no error")
	}
	// The last commit's callers may return just before it marks the
	// group idle.
	for end := time.Now().Add(time.Second); !g.Idle(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the group is not idle after the last caller")
		}
	}
}

// A commit made for others is not cut short by the context of the caller
// that made it.
func TestCommitOutlivesItsCaller(t *testing.T) {
	var got error
	g := &Group[int]{Commit: func(ctx context.Context, _ []int) error {
		time.Sleep(30 * time.Millisecond)
		got = ctx.Err()
		return got
	}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	if err := g.Do(ctx, 1); err != nil || got != nil {
		t.Errorf("commit cut by its caller's context: %v, %v", err, got)
	}
}
