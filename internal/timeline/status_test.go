package timeline

import (
	"fmt"
	"testing"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/tftp"
)

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		data map[string]any
		want string
	}{
		{nil, ""},
		{map[string]any{"status": 200}, "200"},
		{map[string]any{"status": float64(404), "refused": "the build token expired"}, "404 refused"}, // as read back from JSON
		{map[string]any{"status": "not found"}, "not found"},
		{map[string]any{"status": "busy", "refused": "the server is busy"}, "busy refused"},
	} {
		if got := Status(store.Event{Data: c.data}); got != c.want {
			t.Errorf("Status(%v) = %q, want %q", c.data, got, c.want)
		}
	}
	for _, c := range []struct {
		completed, probe, aborted bool
		err                       error
		want                      string
	}{
		{true, false, false, nil, "ok"},
		{false, true, true, &tftp.ClientError{}, "size probe"},
		{false, false, true, &tftp.ClientError{}, "aborted by client"},
		{false, false, false, fmt.Errorf("open: %w", tftp.ErrNotFound), "not found"},
		{false, false, false, tftp.ErrBusy, "busy"},
		{false, false, false, tftp.ErrTimeout, "timed out"},
	} {
		if got := TFTPStatus(c.completed, c.probe, c.aborted, c.err); got != c.want {
			t.Errorf("TFTPStatus(%v) = %q, want %q", c, got, c.want)
		}
	}
}
