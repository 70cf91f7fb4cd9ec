#!/usr/bin/env python3
"""run.py -- the end-to-end test runner (standard library only).

    FOREWARN_BIN=/abs/path/build/forewarn python3 tests/e2e/run.py [filter]

Discovers tests/e2e/test_*.py and runs every module-level function named
test_* (no arguments, plain `assert`), in file order then definition order.
A filter keeps the tests whose "module.function" name contains it.  Prints
"ok   name" or "FAIL name" with the traceback, then "N passed, N failed";
exits 1 when any test failed (or none matched the filter).

Tests make their files with tempfile; the runner points TMPDIR (and
tempfile) at a directory of its own and removes it at the end, so a test
that forgets its files leaves nothing behind.  FOREWARN_KEEP_TMP=1 keeps it.
"""

import importlib.util
import inspect
import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def discover():
    """(name, function) pairs; a module that fails to import is one failing test."""
    sys.path.insert(0, HERE)
    found = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        modname = fn[:-3]
        try:
            spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fn))
            mod = importlib.util.module_from_spec(spec)
            sys.modules[modname] = mod
            spec.loader.exec_module(mod)
        except Exception:
            tb = traceback.format_exc()

            def import_failed(tb=tb):
                raise ImportError("module failed to import:\n" + tb)

            found.append((modname + ".<import>", import_failed))
            continue
        funcs = [
            (name, obj) for name, obj in vars(mod).items()
            if name.startswith("test_") and inspect.isfunction(obj) and obj.__module__ == modname
        ]
        funcs.sort(key=lambda f: f[1].__code__.co_firstlineno)
        found.extend((modname + "." + name, obj) for name, obj in funcs)
    return found


def main(argv):
    flt = argv[1] if len(argv) > 1 else ""
    binary = os.environ.get("FOREWARN_BIN")
    if binary and not os.access(binary, os.X_OK):
        print("FOREWARN_BIN=%s is not an executable file (run make first)" % binary, file=sys.stderr)
        return 1
    scratch = tempfile.mkdtemp(prefix="fw-e2e-run-")
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    try:
        return run_tests(flt)
    finally:
        if os.environ.get("FOREWARN_KEEP_TMP"):
            print("test files kept in %s" % scratch, file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def run_tests(flt):
    tests = [(n, f) for n, f in discover() if flt in n]
    if not tests:
        print("no tests match %r" % flt, file=sys.stderr)
        print("0 passed, 0 failed")
        return 1
    passed = failed = 0
    for name, func in tests:
        t0 = time.monotonic()
        try:
            func()
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            for line in traceback.format_exc().rstrip().splitlines():
                print("     " + line)
        else:
            passed += 1
            ms = (time.monotonic() - t0) * 1000
            print("ok   %s%s" % (name, "  (%.1fs)" % (ms / 1000) if ms >= 1000 else ""))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
