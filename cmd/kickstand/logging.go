package main

import (
	"io"
	"log/slog"
	"strings"
)

// logger is the log every long-running command writes (serve, test-boot's
// sandbox), in the --log-format and at the --log-level asked for: text
// for a terminal, json for journald or a log shipper.
func (g *globals) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: g.level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// quietLogger is the log of one-shot commands (render, host list, ...):
// nothing, unless --log-level was given, then the same log as serve's on w.
func (g *globals) quietLogger(w io.Writer) *slog.Logger {
	if !g.levelSet {
		return slog.New(slog.DiscardHandler)
	}
	return g.logger(w)
}

// checkLogFlags parses --log-format and --log-level before any command
// runs; a bad value is a usage error (exit 2).
func (g *globals) checkLogFlags() error {
	switch g.logFormat {
	case "text", "json":
	default:
		return usageErrorf("--log-format %q: want text or json", g.logFormat)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(g.logLevel))); err != nil {
		return usageErrorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	g.level = l
	return nil
}
