package timeline

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/tftp"
)

// Request events (http.*, tftp.file) carry their outcome in Data:
// "status" (the HTTP status code, or the TFTP outcome: ok, size probe,
// aborted by client, not found, busy, timed out) and, for a request
// kickstand refused, "refused" (why: the build token expired, the address
// is not the host's, the host is not in install...).

// Status is a request event's outcome as listings show it: "200",
// "404 refused", "not found"; "" for an event that is not a request.
func Status(e store.Event) string {
	s, ok := e.Data["status"]
	if !ok {
		return ""
	}
	out := fmt.Sprint(s)
	if r, _ := e.Data["refused"].(string); r != "" {
		out += " refused"
	}
	return out
}

// TFTPStatus is a finished transfer's outcome, for its event's "status".
func TFTPStatus(completed, probe, aborted bool, err error) string {
	switch {
	case probe:
		return "size probe"
	case completed:
		return "ok"
	case aborted:
		return "aborted by client"
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.Is(err, tftp.ErrBusy):
		return "busy"
	case errors.Is(err, tftp.ErrTimeout):
		return "timed out"
	case err != nil:
		return "error"
	}
	return "incomplete"
}
