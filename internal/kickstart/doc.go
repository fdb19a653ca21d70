// Package kickstart parses, lints, formats and rewrites Anaconda kickstart
// files.
//
// It is hand-written because the reference checker, pykickstart's
// ksvalidator, is Python: Debian does not package it, Cobbler 3 quietly
// stopped running it, and no Go library understands the language. kickstand
// renders a kickstart for every host it installs, so it needs a checker it
// can run in-process on every render, fast enough to lint thousands of
// kickstarts a second.
//
// Parity with ksvalidator is the goal, not a re-implementation of Anaconda:
//   - the line state machine (sections, %end, %include, %ksappend) follows
//     pykickstart's parser, including its quirks (no line continuation, an
//     indented %end closes a %post body, a fragment that leaves a section
//     open hides the rest of the including file, %ksappend is spliced in
//     before parsing and shifts ksvalidator's line numbers);
//   - options are parsed by a small emulation of Python 3.11's argparse
//     (unambiguous prefixes, nargs, types, choices, required and mutually
//     exclusive options), because that is what decides most verdicts;
//   - the per-release command and option knowledge (commands.txt) is our
//     own hand-maintained data: for every command, the pykickstart class
//     that handles it in each release, and for every option the release it
//     appeared in, was deprecated in and was removed from;
//   - the checks argparse cannot express (checks.go) are written by hand,
//     each citing the pykickstart class whose behaviour it mirrors.
//
// Every ksvalidator problem is an error, deprecations included, as
// ksvalidator treats them. kickstand adds warnings of its own (a malformed
// --ipv6 address, a second rootpw, cdrom together with url, a file with no
// commands) and hints that name the likely mistake; neither changes the
// verdict. A kickstart fails lint exactly when HasErrors(problems, false).
//
// Rewrite makes a kickstart fit a platform (disk names), an install source
// and a release: what the release does not take is commented out, renamed
// or translated, so that its output lints clean of release differences.
package kickstart
