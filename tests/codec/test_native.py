"""The compiled codec (`make native`, codec/native.py): used when built from the sources as they are,
and never when a source changed since its build (the import system would prefer the stale
extension)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from responses_gateway.codec import native


def _has_compiler() -> bool:
    return shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is not None


def test_the_codec_running_is_the_compiled_one_where_it_can_be_built() -> None:
    # `make setup` (which `make test` runs) builds it wherever there is a C compiler.
    assert native.in_use() is _has_compiler()
    assert not native.stale()


def _copy(tmp_path: Path) -> Path:
    directory = tmp_path / "codec"
    directory.mkdir()
    for path in native.HERE.iterdir():
        if path.suffix in (".py", ".so") or path.name == native.STAMP:
            shutil.copy2(path, directory / path.name)
    return directory


def test_an_extension_older_than_its_source_is_stale(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / native.STAMP).write_text(native.digest(directory) + "\n")
    (directory / "plans.cpython-311-x86_64-linux-gnu.so").touch()  # an extension, whatever the build
    assert native.compiled(directory) and not native.stale(directory)
    with (directory / "plans.py").open("a") as f:
        f.write("# an edit after the build\n")
    assert native.stale(directory)
    (directory / native.STAMP).unlink()
    assert native.stale(directory)  # extensions with no record of what they were built from


def test_no_extensions_nothing_stale(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    for path in native.compiled(directory):
        path.unlink()
    with (directory / "plans.py").open("a") as f:
        f.write("# edited, but nothing was compiled\n")
    assert native.compiled(directory) == [] and not native.stale(directory)


def test_stale_extensions_make_the_codec_load_its_sources(tmp_path: Path) -> None:
    # A copy of the package tree whose plans.py changed after the build: imported in a fresh
    # interpreter, the codec runs from its sources (and still works).
    server = tmp_path / "server"
    shutil.copytree(native.HERE.parents[1], server, ignore=shutil.ignore_patterns("__pycache__"))
    for lib in native.HERE.parents[1].glob("*__mypyc.*"):
        shutil.copy2(lib, server / lib.name)
    with (server / "responses_gateway" / "codec" / "plans.py").open("a") as f:
        f.write("# an edit after the build\n")
    clients = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from responses_gateway import codec\n"
        "from responses_gateway.codec import native\n"
        "from responses_gateway.v1 import response_pb2\n"
        'r = codec.loads(response_pb2.Response(), b\'{"id": "resp_1", "status": "completed"}\')\n'
        "print(native.in_use(), native.HERE == __import__('pathlib').Path(sys.argv[1]).resolve() / 'responses_gateway' / 'codec', r.id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(server), str(clients)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "resp_1"], done.stdout
    if _has_compiler():
        assert "older than its sources" in done.stderr
