package tftp

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrorCode is the code carried by a TFTP ERROR packet (RFC 1350, RFC 2347).
type ErrorCode uint16

// TFTP error codes. Only the ones a read-only server sends or a client may
// send back are worth naming; the rest are listed for completeness of logs.
const (
	ErrCodeNotDefined    ErrorCode = 0
	ErrCodeNotFound      ErrorCode = 1
	ErrCodeAccess        ErrorCode = 2
	ErrCodeDiskFull      ErrorCode = 3
	ErrCodeIllegalOp     ErrorCode = 4
	ErrCodeUnknownTID    ErrorCode = 5
	ErrCodeFileExists    ErrorCode = 6
	ErrCodeNoSuchUser    ErrorCode = 7
	ErrCodeOptionRefused ErrorCode = 8
)

func (c ErrorCode) String() string {
	switch c {
	case ErrCodeNotDefined:
		return "not defined"
	case ErrCodeNotFound:
		return "file not found"
	case ErrCodeAccess:
		return "access violation"
	case ErrCodeDiskFull:
		return "disk full"
	case ErrCodeIllegalOp:
		return "illegal TFTP operation"
	case ErrCodeUnknownTID:
		return "unknown transfer ID"
	case ErrCodeFileExists:
		return "file already exists"
	case ErrCodeNoSuchUser:
		return "no such user"
	case ErrCodeOptionRefused:
		return "option negotiation refused"
	}
	return fmt.Sprintf("error code %d", uint16(c))
}

// Error is a TFTP error: an Opener returns one to choose the code and message
// the client sees, and TransferInfo.Err holds one when the client aborted.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "tftp: " + e.Code.String()
	}
	return fmt.Sprintf("tftp: %s: %s", e.Code, e.Message)
}

// Is lets callers test TFTP errors with the fs sentinels they already know,
// so an Opener wrapping another one need not learn TFTP codes.
func (e *Error) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return e.Code == ErrCodeNotFound
	case fs.ErrPermission:
		return e.Code == ErrCodeAccess
	}
	return false
}

// Errors an Opener may return (or wrap) to pick the TFTP error code.
var (
	ErrNotFound      = &Error{Code: ErrCodeNotFound, Message: "file not found"}
	ErrAccess        = &Error{Code: ErrCodeAccess, Message: "access violation"}
	ErrIllegalOp     = &Error{Code: ErrCodeIllegalOp, Message: "illegal operation"}
	ErrOptionRefused = &Error{Code: ErrCodeOptionRefused, Message: "option negotiation refused"}
)

// Reasons a transfer ended without completing, for TransferInfo.Err.
var (
	// ErrBusy: the request was refused because MaxTransfers were running.
	ErrBusy = errors.New("tftp: server busy")
	// ErrTimeout: the client stopped acknowledging for the idle timeout.
	ErrTimeout = errors.New("tftp: client timed out")
)

// ClientError is an ERROR packet the client sent to end a transfer.
type ClientError struct {
	Code    ErrorCode
	Message string
}

func (e *ClientError) Error() string {
	return fmt.Sprintf("tftp: client aborted: %s: %q", e.Code, e.Message)
}

// toWireError chooses what the client is told about an Opener failure. Only
// codes and fixed messages leave the server: internal error text could reveal
// paths or configuration.
func toWireError(err error) *Error {
	var te *Error
	switch {
	case errors.As(err, &te):
		return te
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return ErrAccess
	case errors.Is(err, errors.ErrUnsupported):
		return ErrIllegalOp
	}
	return &Error{Code: ErrCodeNotDefined, Message: "server error"}
}
