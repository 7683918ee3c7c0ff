#!/usr/bin/env python3
"""Compile the codec (server/responses_gateway/codec/native.py's MODULES) to C extensions with mypyc.

`make native` runs it (and `make setup`, whenever the sources change). The extensions land beside
their sources, with the sources' digest in native.stamp, which the codec checks before using them.
Without a C compiler there is nothing to build: the sources run, a little slower, and it says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from responses_gateway.codec import native  # noqa: E402


def _compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def main() -> int:
    codec = native.HERE
    for old in [*native.compiled(codec), *(ROOT / "server").glob("*__mypyc.*")]:  # never old and new
        old.unlink()
    if _compiler() is None:
        print("build_native: no C compiler: the codec runs as Python", file=sys.stderr)
        (codec / native.STAMP).write_text(native.digest(codec) + "\n")
        return 0
    sources = [str((codec / f"{name}.py").relative_to(ROOT)) for name in native.MODULES]
    # mypyc works in ./build (ignored by git) and puts the modules' shared library in server/.
    argv = [sys.executable, "-m", "mypyc", *sources]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        print("build_native: mypyc failed", file=sys.stderr)
        return 1
    built = native.compiled(codec)
    if len(built) != len(native.MODULES):
        print(f"build_native: expected {len(native.MODULES)} extensions, found {built}", file=sys.stderr)
        return 1
    (codec / native.STAMP).write_text(native.digest(codec) + "\n")
    print(f"build_native: compiled {', '.join(native.MODULES)} (server/responses_gateway/codec)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
