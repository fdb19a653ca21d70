package diagnose

import (
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

var fuzzKinds = []string{"state", "dhcp.discover", "dhcp.offer", "dhcp.ack", "dhcp.nak", "tftp.file",
	"http.loader", "http.script", "http.kernel", "http.initrd", "http.kickstart", "http.stage2",
	"http.repodata", "http.package", "http.updates", "syslog", "callback.built", "callback.failed", "lint", "bogus"}

var fuzzClasses = []string{"loader", "config", "kernel", "initrd", "overlay", "file", ""}

// FuzzDiagnose feeds arbitrary timelines, including the uploaded log and
// syslog text (outside input) and data of unexpected types as a store or a
// buggy recorder could produce: Diagnose must not panic and must keep its
// output in range.
func FuzzDiagnose(f *testing.F) {
	f.Add([]byte{1, 3, 5, 6, 7, 8, 9, 10, 11, 16}, "Network is unreachable\nSettingsNotFoundError", int64(90))
	f.Add([]byte{0, 3, 5, 16, 0, 3, 8}, "", int64(5000))
	f.Add([]byte{17, 17, 17}, "Error: x\r\n\r\n", int64(-10))
	f.Fuzz(func(t *testing.T, script []byte, text string, nowSec int64) {
		var evs []store.Event
		for i, b := range script {
			kind := fuzzKinds[int(b)%len(fuzzKinds)]
			data := map[string]any{
				"to":        []any{"install", "local", 7, nil}[int(b>>5)%4],
				"firmware":  []any{"bios", "uefi", "ipxe", "", 3.5}[int(b>>3)%5],
				"class":     fuzzClasses[int(b>>2)%len(fuzzClasses)],
				"completed": b&1 == 0,
				"status":    []any{200, 404.0, "500", nil}[int(b>>1)%4],
				"family":    []any{4, 6.0, "6"}[int(b)%3],
				"log_tail":  text,
				"path":      text,
			}
			evs = append(evs, store.Event{ID: int64(i), At: t0.Add(time.Duration(i) * time.Second), Kind: kind, Detail: text, Data: data})
		}
		d := Diagnose(evs, t0.Add(time.Duration(nowSec)*time.Second), Options{})
		if d.Progress < 0 || d.Progress > 100 {
			t.Fatalf("progress %d", d.Progress)
		}
		if len(d.LogTail) > LogTailLines {
			t.Fatalf("log tail %d lines", len(d.LogTail))
		}
		if d.Stage == "" || (d.Stalled && d.Cause == "") {
			t.Fatalf("incomplete diagnosis %+v", d)
		}
	})
}
