package kickstart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
)

// ExitError carries the process exit status a CLI command wants; the
// kickstand root command maps it to os.Exit.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// DefaultRelease is what `ks lint` checks against without --release.
const DefaultRelease = "RHEL9"

// LintCommand is `kickstand ks lint`.
type LintCommand struct {
	Release         string
	AllowDeprecated bool
	Strict          bool
	JSON            bool
	// Emit, when set, prints the report instead of JSON or text lines
	// (the CLI's -o yaml).
	Emit func(LintReport) error
	// FollowIncludes reads %include and %ksappend targets like
	// `ksvalidator -i`: relative to the file, then in IncludeDirs.
	FollowIncludes bool
	IncludeDirs    []string
	// AllowMissing are patterns (for example /tmp/*) of include targets
	// that %pre writes at install time: missing, they are warnings.
	AllowMissing []string
	Out          io.Writer
	// Stdin is read for the file name "-".
	Stdin io.Reader
}

// StdinName is how problems in a kickstart read from stdin are reported.
const StdinName = "<stdin>"

// maxLintInput bounds one kickstart read by `ks lint`.
const maxLintInput = 64 << 20

// LintReport is the structured (-o json) shape of a lint run.
type LintReport struct {
	Release  string    `json:"release"`
	Valid    bool      `json:"valid"`
	Problems []Problem `json:"problems"`
}

// Run lints every file. It returns an *ExitError with code 1 when any
// file has an error (or, with Strict, a warning).
func (c LintCommand) Run(ctx context.Context, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("ks lint: no kickstart files given")
	}
	rel := c.Release
	if rel == "" {
		rel = DefaultRelease
	}
	v, err := ParseVersion(rel)
	if err != nil {
		return fmt.Errorf("ks lint: %w", err)
	}
	for _, pat := range c.AllowMissing {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("ks lint: --allow-missing %q: %w", pat, err)
		}
	}
	var all []Problem
	for _, name := range files {
		src, err := c.read(name)
		if err != nil {
			return fmt.Errorf("ks lint: %w", err)
		}
		if name == "-" {
			name = StdinName
		}
		probs := LintContext(ctx, src, name, v, LintOptions{
			AllowDeprecated: c.AllowDeprecated,
			Parse: ParseOptions{FollowIncludes: c.FollowIncludes, IncludeDirs: c.IncludeDirs,
				AllowMissing: c.AllowMissing},
		})
		all = append(all, probs...)
	}
	failed := HasErrors(all, c.Strict)
	if all == nil {
		all = []Problem{}
	}
	rep := LintReport{Release: v.String(), Valid: !failed, Problems: all}
	if c.Emit != nil {
		if err := c.Emit(rep); err != nil {
			return fmt.Errorf("ks lint: write report: %w", err)
		}
	} else if c.JSON {
		enc := json.NewEncoder(c.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("ks lint: write report: %w", err)
		}
	} else {
		for _, p := range all {
			if _, err := fmt.Fprintln(c.Out, p.String()); err != nil {
				return fmt.Errorf("ks lint: write report: %w", err)
			}
		}
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// read reads a kickstart named on the command line, "-" being stdin.
func (c LintCommand) read(name string) ([]byte, error) {
	r := c.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	} else if r == nil {
		return nil, fmt.Errorf("-: no standard input")
	} else {
		name = StdinName
	}
	return readLimit(r, name, maxLintInput)
}

// RewriteCommand is `kickstand ks rewrite`.
type RewriteCommand struct {
	Platform string
	Source   string
	Release  string
	Write    bool
	Out      io.Writer
}

// Run rewrites one file, printing the unified diff (or writing the file
// in place with Write).
func (c RewriteCommand) Run(ctx context.Context, file string) error {
	plat, err := ParsePlatform(c.Platform)
	if err != nil {
		return fmt.Errorf("ks rewrite: %w", err)
	}
	opts := RewriteOptions{Platform: plat}
	if c.Source != "" {
		s, err := ParseSource(c.Source)
		if err != nil {
			return fmt.Errorf("ks rewrite: %w", err)
		}
		opts.Source = &s
	}
	if c.Release != "" {
		if opts.Version, err = ParseVersion(c.Release); err != nil {
			return fmt.Errorf("ks rewrite: %w", err)
		}
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("ks rewrite: %w", err)
	}
	out, diff, err := RewriteSource(src, file, opts)
	if err != nil {
		return fmt.Errorf("ks rewrite %s: %w", file, err)
	}
	if c.Write {
		if diff == "" {
			return nil
		}
		st, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("ks rewrite: %w", err)
		}
		if err := os.WriteFile(file, out, st.Mode().Perm()); err != nil {
			return fmt.Errorf("ks rewrite: %w", err)
		}
		return nil
	}
	if _, err := io.WriteString(c.Out, diff); err != nil {
		return fmt.Errorf("ks rewrite: write diff: %w", err)
	}
	return nil
}

// FmtCommand is `kickstand ks fmt`.
type FmtCommand struct {
	Write bool
	Out   io.Writer
}

// Run prints (or with Write, rewrites) the normalised kickstart.
func (c FmtCommand) Run(ctx context.Context, file string) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("ks fmt: %w", err)
	}
	out := Format(Parse(ctx, src, file, ParseOptions{}))
	if c.Write {
		st, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("ks fmt: %w", err)
		}
		if err := os.WriteFile(file, out, st.Mode().Perm()); err != nil {
			return fmt.Errorf("ks fmt: %w", err)
		}
		return nil
	}
	if _, err := c.Out.Write(out); err != nil {
		return fmt.Errorf("ks fmt: %w", err)
	}
	return nil
}
