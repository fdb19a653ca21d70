package ratelimit

import (
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	e := Every{Interval: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	if n, ok := e.Tick(t0); !ok || n != 1 {
		t.Fatalf("first event: %d %v, want told at once", n, ok)
	}
	for i := 1; i <= 5; i++ {
		if _, ok := e.Tick(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("event %d inside the interval was told", i)
		}
	}
	if n, ok := e.Tick(t0.Add(10 * time.Second)); !ok || n != 6 {
		t.Fatalf("after the interval: %d %v, want told, standing for 6", n, ok)
	}
}
