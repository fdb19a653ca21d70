#!/usr/bin/env python3
"""Record ksvalidator's verdicts for kickstand's test corpora.

This runs pykickstart's own ksvalidator (tools/ksvalidator.py in a
pykickstart checkout, imported unchanged) on every file for every release
kickstand supports, and prints one TSV row per (file, release):

    file  release  invalid(0/1)  first-problem line  first-problem message

ksvalidator prints non-fatal problems as they happen and a fatal one last,
without always naming a line, so the harness watches the parser to note the
line each problem was reported on: the exception's own line, or for a
warning the line of the command being dispatched (inside an %include that
is the fragment's line, as ksvalidator counts it). Nothing of pykickstart is
copied here; its checkout is only run.

Usage (no PyPI needed: run pykickstart straight from a checkout):
    git -C /path/to/pykickstart archive HEAD | tar -x -C /tmp/pyks
    cd internal/kickstart/testdata
    PYKS=/tmp/pyks python3 ../tools/oracle.py ks/*.ks > expect.tsv
    PYKS=/tmp/pyks python3 ../tools/oracle.py -i crafted/*.ks crafted/*.ks.gz > crafted.tsv

-i follows %include as `ksvalidator -i` does. Each file is validated from
its own directory, so relative %include and %ksappend paths resolve next to
it. A .ks.gz file is decompressed to a temporary file first (the corpus
keeps its 10 MB inputs small that way).
"""
import contextlib
import gzip
import importlib.util
import io
import os
import re
import sys
import tempfile

PYKS = os.environ.get("PYKS", "/tmp/pyks")
sys.path.insert(0, PYKS)

from pykickstart import parser as ksparser  # noqa: E402

RELEASES = ["RHEL6", "RHEL7", "RHEL8", "RHEL9", "RHEL10", "F40"]

spec = importlib.util.spec_from_file_location("ksvalidator", os.path.join(PYKS, "tools", "ksvalidator.py"))
ksvalidator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ksvalidator)

# Problems noted while ksvalidator runs: (line, message).
noted = []
current = {"line": ""}

_orig_try = ksparser.KickstartParser._tryFunc
_orig_command = ksparser.KickstartParser.handleCommand


def _try(self, fn):
    def watched():
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - _tryFunc catches all too
            line = getattr(e, "lineno", None)
            if line is None:
                line = current["line"]
            noted.append((line, getattr(e, "message", None) or str(e)))
            raise
    # ksvalidator's own _tryFunc counts and reports it.
    return _orig_try(self, watched)


def _command(self, lineno, args):
    current["line"] = lineno
    return _orig_command(self, lineno, args)


ksparser.KickstartParser._tryFunc = _try
ksparser.KickstartParser.handleCommand = _command

from pykickstart import sections as kssections  # noqa: E402

for cls in vars(kssections).values():
    if isinstance(cls, type) and "handleHeader" in vars(cls):
        def _header(self, lineno, args, _orig=vars(cls)["handleHeader"]):
            current["line"] = lineno
            return _orig(self, lineno, args)

        cls.handleHeader = _header

LINE_RE = re.compile(r"^The following problem occurred on line (\d+) of the kickstart file:\n\n(.*?)\n?$", re.S)
READ_RE = re.compile(r"^There was a problem reading from line (\d+) of the kickstart file$")


def validate(path, release, follow):
    """Run ksvalidator on path; return (exit status, first (line, message))."""
    noted.clear()
    current["line"] = ""
    args = (["-i"] if follow else []) + ["-v", release, os.path.basename(path)]
    cwd = os.getcwd()
    os.chdir(os.path.dirname(os.path.abspath(path)))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc, msgs = ksvalidator.main(args)
    finally:
        os.chdir(cwd)
    problems = list(noted)
    # What is left in msgs is the fatal problem ksvalidator printed last.
    for m in msgs:
        mm = LINE_RE.match(m)
        if mm:
            problems.append((int(mm.group(1)), mm.group(2)))
            continue
        mm = READ_RE.match(m)
        if mm:
            problems.append((int(mm.group(1)), m))
            continue
        problems.append(("", m))
    if rc and not problems:
        problems.append(("", "(ksvalidator failed without a message)"))
    first = problems[0] if problems else ("", "")
    return rc, first


def printable(s):
    """Escape control and other unprintable characters as \\xNN or
    \\uNNNN so the TSV stays text (the Go test escapes the same way)."""
    out = []
    for ch in s:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append("\\u%04x" % ord(ch))
    return "".join(out)


def main(argv):
    follow = False
    files = []
    for a in argv:
        if a == "-i":
            follow = True
        else:
            files.append(a)
    for path in files:
        name = os.path.basename(path)
        tmp = None
        if path.endswith(".gz"):
            # Decompress next to the original so relative includes still work.
            fd, tmp = tempfile.mkstemp(suffix=".ks", dir=os.path.dirname(os.path.abspath(path)))
            with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
                out.write(src.read())
            target = tmp
        else:
            target = path
        try:
            for rel in RELEASES:
                rc, (line, msg) = validate(target, rel, follow)
                msg = printable(msg.replace("\n", " ").replace("\t", " "))
                if len(msg) > 300:
                    msg = msg[:300] + "..."
                print("\t".join([name, rel, "1" if rc else "0", str(line), msg]))
                sys.stdout.flush()
        finally:
            if tmp:
                os.remove(tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
