"""The codec's modules compiled to C extensions (mypyc, `make native`), and when not to use them.

The codec runs on every request and event; compiled, it takes about a third less CPU (the bench's
saturated REST line: ~377 -> ~344 µs per request). `scripts/build_native.py` compiles MODULES next to
their sources and writes STAMP, the sources' digest. An extension found beside a source that has
changed since (an edit, a checkout, without `make native`) would run the old code: `choose()` then
loads the sources instead, and says so once. No compiler at build time: no extensions, the sources run.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import logging
import sys
from pathlib import Path

# In import order: each imports only those before it.
MODULES = ("values", "depth", "defaults", "plans", "unions")
STAMP = "native.stamp"
HERE = Path(__file__).resolve().parent
_PACKAGE = __name__.rpartition(".")[0]

log = logging.getLogger(__name__)


def digest(directory: Path = HERE) -> str:
    """The sources' digest, as the build records it in STAMP."""
    h = hashlib.sha256()
    for name in MODULES:
        h.update(name.encode() + b"\0" + (directory / f"{name}.py").read_bytes() + b"\0")
    return h.hexdigest()


def compiled(directory: Path = HERE) -> list[Path]:
    """The extensions of MODULES this interpreter would import from `directory`."""
    return [
        directory / f"{name}{suffix}"
        for name in MODULES
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (directory / f"{name}{suffix}").exists()
    ]


def stale(directory: Path = HERE) -> bool:
    """Extensions are there, but not built from the sources as they are now."""
    if not compiled(directory):
        return False
    try:
        return (directory / STAMP).read_text().strip() != digest(directory)
    except OSError:
        return True


def choose() -> None:
    """Before the codec's modules are first imported: when the extensions are stale, import the
    sources under the modules' names instead (the import system would prefer the extensions)."""
    if not stale():
        return
    log.warning("the compiled codec is older than its sources: using the sources (run `make native`)")
    for name in MODULES:
        qualified = f"{_PACKAGE}.{name}"
        if qualified in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(qualified, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)


def in_use() -> bool:
    """Whether the codec running is the compiled one."""
    files = [getattr(sys.modules.get(f"{_PACKAGE}.{name}"), "__file__", None) for name in MODULES]
    return all(f is not None and not f.endswith(".py") for f in files)
