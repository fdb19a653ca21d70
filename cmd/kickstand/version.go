package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what `kickstand version` reports: the module version and
// the commit the binary was built from, as the Go toolchain stamped them
// (debug.ReadBuildInfo), so a bug report names the exact code.
type versionInfo struct {
	Version  string `json:"version"`            // v1.2.3, a pseudo-version, or (devel)
	Revision string `json:"revision,omitempty"` // VCS commit
	Time     string `json:"time,omitempty"`     // commit time
	Modified bool   `json:"modified"`           // built from a tree with uncommitted changes
	Go       string `json:"go"`
}

func buildVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return versionInfo{Version: "(devel)"}
	}
	return versionFrom(bi)
}

func versionFrom(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: bi.Main.Version, Go: bi.GoVersion}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `version` and `--version` print.
func (v versionInfo) String() string {
	s := "kickstand " + v.Version
	if v.Revision == "" {
		return s + " (no VCS revision: built outside a git clone, or with -buildvcs=false)"
	}
	s += " commit " + v.Revision
	if v.Modified {
		s += " with uncommitted changes"
	}
	if v.Time != "" {
		s += " (" + v.Time + ")"
	}
	if v.Go != "" {
		s += ", " + v.Go
	}
	return s
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version and the commit kickstand was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			return g.emit(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, v)
				return err
			})
		},
	}
}
