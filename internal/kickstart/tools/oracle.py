# Dev-time oracle for testdata/expect.tsv: run pykickstart (PYKS, default
# /tmp/pyks) the way ksvalidator runs it (no -i) and print, per file and
# release: file, version, invalid(0/1), first-problem line, message (TSV).
# Usage: cd testdata/ks && python3 ../../tools/oracle.py *.ks > ../expect.tsv
import sys, os, warnings
sys.path.insert(0, os.environ.get('PYKS', '/tmp/pyks'))
from pykickstart.parser import KickstartParser, preprocessKickstart
from pykickstart.version import makeVersion
from pykickstart.errors import KickstartParseWarning, KickstartParseError, KickstartError
import pykickstart.parser as P
VERS = ["RHEL6","RHEL7","RHEL8","RHEL9","RHEL10","F40"]
def run(path, v):
    h = makeVersion(v)
    warnings.filterwarnings(action="error", category=KickstartParseWarning)
    p = KickstartParser(h, followIncludes=False, errorsAreFatal=False)
    probs = []
    cur = {"line": 0}
    od = h.dispatcher
    def disp(args, lineno):
        cur["line"] = lineno
        return od(args, lineno)
    h.dispatcher = disp
    for s in p._sections.values():
        oh = s.handleHeader
        def hh(lineno, args, oh=oh):
            cur["line"] = lineno
            return oh(lineno, args)
        s.handleHeader = hh
    def tf(fn):
        try:
            fn()
        except Exception as e:
            p.errorsCount += 1
            ln = getattr(e, "lineno", None) or cur["line"]
            msg = getattr(e, "message", None) or str(e)
            probs.append((ln, msg))
    p._tryFunc = tf
    rc = 0
    try:
        f = preprocessKickstart(path)
        p.readKickstart(f)
        rc = p.errorsCount
    except KickstartParseError as e:
        rc = p.errorsCount + 1
        probs.append((e.lineno or "", e.message if hasattr(e, "message") else str(e)))
    except KickstartError as e:
        rc = p.errorsCount + 1
        probs.append(("", "General kickstart error in input file"))
    except Exception as e:
        rc = p.errorsCount + 1
        probs.append(("", "General error in input file:  %s" % e))
    return rc, probs
for path in sys.argv[1:]:
    for v in VERS:
        rc, probs = run(path, v)
        line, msg = (probs[0] if probs else ("", ""))
        print("\t".join([os.path.basename(path), v, str(min(rc,1)), str(line), msg.replace("\n"," ").replace("\t"," ")]))
