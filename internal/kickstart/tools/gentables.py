#!/usr/bin/env python3
"""Extract kickstand's per-release kickstart tables from pykickstart.

Why this exists: the option tables in tables_gen.go must mirror what
ksvalidator accepts for each release. Typing ~90 commands x 6 releases by
hand from the class definitions is error prone, so this script loads a
pykickstart checkout, instantiates each release's handler and records the
*data* of every command's argparse parser (option strings, arity, value
type, choices, required, deprecated, mutually exclusive groups) plus the
pykickstart class it comes from. No pykickstart code is carried over; the
behaviour around the data lives in kickstand's own Go code (argparse.go,
checks.go).

Usage: PYKS=/path/to/pykickstart python3 gentables.py > ../tables_gen.go
(tables_gen.go in the repository was produced from pykickstart 3.74,
commit 435ebbefdb5a2290fdea0b4ce648c5aba7651711.)
"""
import inspect
import os
import re
import sys

sys.path.insert(0, os.environ.get("PYKS", "/tmp/pyks"))

from pykickstart.base import DeprecatedCommand, RemovedCommand  # noqa: E402
from pykickstart.parser import KickstartParser  # noqa: E402
from pykickstart.version import makeVersion  # noqa: E402

VERSIONS = ["RHEL6", "RHEL7", "RHEL8", "RHEL9", "RHEL10", "F40"]

# parse() implementations that do not use argparse at all.
RAW = {"FC3_DeviceProbe", "FC3_Authconfig", "F28_Authconfig", "F28_Authselect", "F19_Realm"}
NOARGS = {"FC3_Cdrom", "F28_Hmc", "RHEL7_Hmc"}
NOIMPL = {"RHEL7_Method", "RHEL6_Method", "F28_Method"}


def parse_style(cls):
    seen = set()
    todo = [cls]
    while todo:
        c = todo.pop(0)
        owner = None
        for k in c.__mro__:
            if "parse" in k.__dict__:
                owner = k
                break
        if owner is None or owner in seen:
            continue
        seen.add(owner)
        src = inspect.getsource(owner.__dict__["parse"])
        if "parse_known_args" in src:
            return "styleKnown"
        if "parse_args(" in src:
            return "styleStrict"
        for n in re.findall(r"(\w+)\.parse\(self", src):
            todo.extend(x for x in owner.__mro__ if x.__name__ == n)
        if "super(" in src:
            todo.append(owner.__mro__[1])
    return ""


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nargs_of(a):
    n = a.nargs
    if n is None:
        return "nargsOne"
    if n == 0:
        return "nargsZero"
    if n == "?":
        return "nargsOptional"
    if n == "*":
        return "nargsStar"
    if n == "+":
        return "nargsPlus"
    if isinstance(n, int):
        return "nargs(%d)" % n
    raise SystemExit("unknown nargs %r" % (n,))


def type_of(a, obj):
    t = a.type
    if t is None:
        return "typeStr", None
    name = getattr(t, "__name__", repr(t))
    if name == "int":
        return "typeInt", None
    if name == "float":
        return "typeFloat", None
    if name == "ksboolean":
        return "typeBool", None
    if name in ("_type_cb", "_level_cb", "level_cb", "_when_cb"):
        for attr, msg, upper in (("typeMap", "Invalid autopart type: %s", False),
                                 ("levelMap", None, None),
                                 ("whenMap", "Invalid parameter to --when= argument: %s", False)):
            m = getattr(obj, attr, None)
            if m:
                if attr == "levelMap":
                    src = inspect.getsource(t)
                    upper = ".upper()" in src
                    msg = re.search(r'_\("([^"]*)"\)', src).group(1)
                return "typeEnum", (sorted(m.keys()), msg, upper)
        raise SystemExit("enum callback without map: %s" % name)
    return "typeStr", None


def emit_parser(op, obj, out):
    acts = list(op._actions)
    idx = {id(a): i for i, a in enumerate(acts)}
    out.append("\tacts: []act{")
    for a in acts:
        fields = ["dest: %s" % q(a.dest)]
        if not a.option_strings:
            fields.append("pos: true")
            if a.metavar:
                fields.append("metavar: %s" % q(str(a.metavar)))
        else:
            fields.append("name: %s" % q("/".join(a.option_strings)))
        fields.append("nargs: %s" % nargs_of(a))
        typ, enum = type_of(a, obj)
        if typ != "typeStr":
            fields.append("typ: %s" % typ)
        if enum:
            keys, msg, upper = enum
            fields.append("enum: []string{%s}" % ", ".join(q(k) for k in keys))
            fields.append("enumMsg: %s" % q(msg))
            if upper:
                fields.append("enumUpper: true")
        if a.choices:
            fields.append("choices: []string{%s}" % ", ".join(q(str(c)) for c in a.choices))
        if a.required:
            fields.append("required: true")
        if getattr(a, "deprecated", False):
            fields.append("deprecated: true")
        out.append("\t\t{%s}," % ", ".join(fields))
    out.append("\t},")
    names = [(s, idx[id(a)]) for s, a in op._option_string_actions.items()]
    out.append("\tnames: []optName{%s}," % ", ".join("{%s, %d}" % (q(s), i) for s, i in names))
    groups = []
    for g in op._mutually_exclusive_groups:
        members = [idx[id(a)] for a in g._group_actions if id(a) in idx]
        groups.append("{members: []int{%s}, required: %s}" % (", ".join(map(str, members)), "true" if g.required else "false"))
    if groups:
        out.append("\tgroups: []group{%s}," % ", ".join(groups))


def main():
    specs = {}   # body -> var name
    order = []
    tables = {}
    used_names = set()

    def register(varbase, header, body):
        key = body
        if key in specs:
            return specs[key]
        name = varbase
        n = 2
        while name in used_names:
            name = "%s_%d" % (varbase, n)
            n += 1
        used_names.add(name)
        specs[key] = name
        order.append((name, header, body))
        return name

    for v in VERSIONS:
        h = makeVersion(v)
        cmds = {}
        for cmd, obj in sorted(h.commands.items()):
            if obj is None:
                continue
            cls = type(obj)
            mod = cls.__module__.split(".")[-1]
            cite = "commands/%s.py %s" % (mod, cls.__name__)
            out = ["\tclass: %s," % q(cite)]
            owner = next(k for k in cls.__mro__ if "parse" in k.__dict__)
            if owner is DeprecatedCommand:
                out.append("\tstyle: styleDeprecated,")
            elif owner is RemovedCommand:
                out.append("\tstyle: styleRemoved,")
            elif cls.__name__ in RAW:
                out.append("\tstyle: styleRaw,")
            elif cls.__name__ in NOARGS:
                out.append("\tstyle: styleNoArgs,")
            elif cls.__name__ in NOIMPL:
                out.append("\tstyle: styleNoImpl,")
            else:
                st = parse_style(cls)
                if not st:
                    raise SystemExit("cannot classify %s" % cite)
                out.append("\tstyle: %s," % st)
                emit_parser(obj.op, obj, out)
            conf = getattr(obj, "conflictingCommands", None)
            if conf:
                out.append("\tconflicts: []string{%s}," % ", ".join(q(c) for c in conf))
            body = "\n".join(out)
            name = register("cmd" + cls.__name__, "// pykickstart: " + cite, body)
            cmds[cmd] = name
        # Sections, as KickstartParser registers them for this handler.
        secs = {}
        p = KickstartParser(h)
        for sname, sobj in sorted(p._sections.items()):
            cls = type(sobj)
            cite = "sections.py %s" % cls.__name__
            out = ["\tclass: %s," % q(cite)]
            if not hasattr(sobj, "_getParser"):
                out.append("\tstyle: styleRaw,")
            else:
                out.append("\tstyle: styleStrict,")
                emit_parser(sobj._getParser(), sobj, out)
            body = "\n".join(out)
            secs[sname] = register("sec" + cls.__name__, "// pykickstart: " + cite + " (" + v + ")", body)
        tables[v] = (cmds, secs)

    w = sys.stdout.write
    w("// Code generated by tools/gentables.py from pykickstart 3.74 "
      "(435ebbefdb5a2290fdea0b4ce648c5aba7651711); DO NOT EDIT.\n\n")
    w("package kickstart\n\n")
    for name, header, body in order:
        w("%s\nvar %s = &cmdSpec{\n%s\n}\n\n" % (header, name, body))
    for v in VERSIONS:
        cmds, secs = tables[v]
        w("// pykickstart: handlers/%s.py\n" % v.lower())
        w("var commands%s = map[string]*cmdSpec{\n" % v)
        for c in sorted(cmds):
            w("\t%s: %s,\n" % (q(c), cmds[c]))
        w("}\n\n")
        w("var sections%s = map[string]*cmdSpec{\n" % v)
        for s in sorted(secs):
            w("\t%s: %s,\n" % (q(s), secs[s]))
        w("}\n\n")


if __name__ == "__main__":
    main()
