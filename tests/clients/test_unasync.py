"""scripts/unasync.py: the blocking Python client (_sync.py) is generated from the asyncio one (_async.py).

The committed pair must agree (what `make check-generate` runs), and the check must catch both ways of
getting out of step: a hand edit of _sync.py, and an edit of _async.py without regenerating.
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/unasync.py"
CLIENT = ROOT / "clients/python/src/responses_gateway/client"


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unasync = load("unasync_script", SCRIPT)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the committed _async.py / _sync.py, to break on purpose."""
    source, target = tmp_path / "_async.py", tmp_path / "_sync.py"
    shutil.copy(CLIENT / "_async.py", source)
    shutil.copy(CLIENT / "_sync.py", target)
    return source, target


def test_committed_sync_client_is_what_the_async_one_gives() -> None:
    done = run("--check")
    assert done.returncode == 0, done.stderr
    assert "_sync.py is up to date" in done.stdout
    assert (CLIENT / "_sync.py").read_text().startswith("# Generated from _async.py by scripts/unasync.py")


def test_check_fails_on_a_hand_edited_sync_client(pair: tuple[Path, Path]) -> None:
    source, target = pair
    edited = target.read_text().replace('"""Consume the remaining events."""', '"""Consume the rest."""')
    assert edited != target.read_text()
    target.write_text(edited)

    done = run("--check", "--source", source, "--target", target)
    assert done.returncode == 1
    assert f"{target} is stale" in done.stderr
    assert '-        """Consume the rest."""' in done.stderr  # the diff: committed -> expected
    assert '+        """Consume the remaining events."""' in done.stderr
    assert "make generate" in done.stderr
    assert target.read_text() == edited  # --check writes nothing


def test_check_fails_on_a_missing_sync_client(pair: tuple[Path, Path]) -> None:
    source, target = pair
    target.unlink()
    done = run("--check", "--source", source, "--target", target)
    assert done.returncode == 1
    assert "is stale (it is missing)" in done.stderr
    assert not target.exists()


def test_an_async_edit_is_stale_until_regenerated(pair: tuple[Path, Path]) -> None:
    source, target = pair
    models = "    # -- models ---"
    method = (
        "    async def model_ids(self) -> list[str]:\n"
        "        models = await self.list_models()\n"
        "        return [m.id for m in models.data]\n\n"
    )
    assert models in source.read_text()
    source.write_text(source.read_text().replace(models, method + models))

    stale = run("--check", "--source", source, "--target", target)
    assert stale.returncode == 1
    assert "+    def model_ids(self) -> list[str]:" in stale.stderr

    written = run("--source", source, "--target", target)
    assert written.returncode == 0, written.stderr
    assert run("--check", "--source", source, "--target", target).returncode == 0
    code = target.read_text()
    assert "        models = self.list_models()\n" in code
    # The regenerated module imports, and its new method is a plain (blocking) one.
    generated = load("generated_sync", target)
    assert not inspect.iscoroutinefunction(generated.ResponsesClient.model_ids)
    assert not inspect.iscoroutinefunction(generated.ResponsesClient.create)


def test_substitutions_and_markers() -> None:
    source = (
        "import asyncio  # unasync: async-only\n"
        "\n"
        "class AsyncThing(AsyncIterator[int]):\n"
        "    async def __anext__(self) -> int:\n"
        "        # unasync: async-only\n"
        "        await asyncio.sleep(0)\n"
        "        # unasync: sync-only\n"
        "        # time.sleep(0)\n"
        "        #\n"
        "        # if self.done:\n"
        "        #     raise StopIteration\n"
        "        # unasync: end\n"
        "        return await anext(self._items)\n"
    )
    assert unasync.unasync(source, "_a.py") == unasync.header("_a.py") + (
        "\n"
        "class Thing(Iterator[int]):\n"
        "    def __next__(self) -> int:\n"
        "        time.sleep(0)\n"
        "\n"
        "        if self.done:\n"
        "            raise StopIteration\n"
        "        return next(self._items)\n"
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("channel = grpc.aio.server()\n", r"_a\.py:1: 'grpc\.aio' is left in the sync code"),
        ("x = 1\n# unasync: async-only\ny = 2\n", r"block is not closed"),
        ("# unasync: end\n", r"_a\.py:1: `# unasync: end` outside a block"),
        (
            "# unasync: sync-only\n# unasync: sync-only\n# unasync: end\n",
            r"_a\.py:2: `# unasync: sync-only` repeated inside its own block",
        ),
        ("# unasync: sync-only\nx = 1\n# unasync: end\n", r"_a\.py:2: a sync-only line must be `# <code>`"),
        ("x = 1  # unasync: sync only\n", r"_a\.py:1: unknown marker"),
    ],
)
def test_bad_sources_are_refused(source: str, error: str) -> None:
    with pytest.raises(unasync.UnasyncError, match=error):
        unasync.unasync(source, "_a.py")


def test_a_rule_that_matches_nothing_fails(tmp_path: Path) -> None:
    source = tmp_path / "_async.py"
    source.write_text("async def f() -> None:\n    await g()\n")
    with pytest.raises(unasync.UnasyncError, match=r"rules matched nothing in _async\.py.*AsyncStub"):
        unasync.generate(source, tmp_path / "_sync.py")
    done = run("--source", source, "--target", tmp_path / "_sync.py")
    assert done.returncode == 1
    assert "rules matched nothing" in done.stderr
    assert not (tmp_path / "_sync.py").exists()
