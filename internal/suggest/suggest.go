// Package suggest finds what a mistyped word most likely meant: the
// "did you mean" of the inventory's unknown keys and of kickstart
// commands and options, from one edit distance.
package suggest

import "iter"

// Closest returns the candidate at most maxDist edits from s, the nearest
// and then the first in sorted order, or "" when none is that close.
func Closest(s string, candidates iter.Seq[string], maxDist int) string {
	best, bestD := "", maxDist+1
	for c := range candidates {
		if d := Distance(s, c); d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b, bounded: words
// over 64 bytes (a 10 MB "word" in a hostile kickstart) are not compared
// and count as far apart.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
