"""The request log's direct write: the same bytes as the `logging` path, and only while the logger
is configured the way `configure` left it (level, handlers, filters and formatter honoured)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from responses_gateway.telemetry import requestlog

LINE = {"request_id": "req_1", "model": "m", "status": "completed", "latency_ms": 1.5, "note": "é\u2028"}


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """A buffer for the log's stream; the logger restored afterwards."""
    log = requestlog.log
    saved = (list(log.handlers), log.level, log.propagate, requestlog._handler)
    buffer = io.StringIO()
    monkeypatch.setattr(requestlog.time, "time", lambda: 1234.56789)
    yield buffer
    log.handlers[:], log.level, log.propagate, requestlog._handler = saved
    logging.disable(logging.NOTSET)


def configured(buffer: io.StringIO) -> None:
    """The logger as the gateway's start-up leaves it, writing into `buffer` in place of stderr. Done
    in each test's body: pytest swaps sys.stderr and adds its capture handlers to non-propagating
    loggers as each test phase begins; `configure` (clearing handlers) is what the gateway runs."""
    requestlog.configure(True)
    assert requestlog._handler is not None and requestlog._handler.stream is sys.stderr
    requestlog._handler.setStream(buffer)  # type: ignore[arg-type]


def through_logging(line: dict[str, object]) -> str:
    """What the plain `logging` path writes for `line` (the handler of `configure`, not bypassed)."""
    handler = requestlog._handler
    assert handler is not None
    out = io.StringIO()
    previous = handler.setStream(out)
    requestlog.log.addFilter(lambda record: True)  # any filter: the direct path steps aside
    try:
        requestlog.write(dict(line))
    finally:
        requestlog.log.filters.clear()
        handler.setStream(previous)  # type: ignore[arg-type]
    return out.getvalue()


def test_direct_write_is_byte_identical_to_logging(stderr: io.StringIO) -> None:
    configured(stderr)
    assert requestlog._direct() is requestlog._handler is not None  # as configured: the direct path
    requestlog.write(dict(LINE))
    direct = stderr.getvalue()
    assert direct == through_logging(LINE)
    assert direct.endswith("\n") and direct.count("\n") == 1
    assert json.loads(direct) == {**LINE, "ts": 1234.568}


def test_the_level_is_honoured(stderr: io.StringIO) -> None:
    configured(stderr)
    requestlog.log.setLevel(logging.WARNING)
    assert not requestlog.enabled()
    requestlog.write(dict(LINE))
    requestlog.log.setLevel(logging.INFO)
    logging.disable(logging.INFO)
    requestlog.write(dict(LINE))
    assert stderr.getvalue() == ""
    logging.disable(logging.NOTSET)
    requestlog.write(dict(LINE))
    assert json.loads(stderr.getvalue())["request_id"] == "req_1"


def test_disabled_writes_nothing(stderr: io.StringIO) -> None:
    configured(stderr)
    requestlog.configure(False)
    assert not requestlog.enabled()
    requestlog.write(dict(LINE))
    assert stderr.getvalue() == ""


def test_other_configuration_is_followed(stderr: io.StringIO) -> None:
    configured(stderr)
    # Another handler: both get the line, through logging.
    extra = io.StringIO()
    handler = logging.StreamHandler(extra)
    requestlog.log.addHandler(handler)
    requestlog.write(dict(LINE))
    assert stderr.getvalue() == extra.getvalue() != ""
    requestlog.log.removeHandler(handler)
    # A formatter of the operator's own on the gateway's handler: used.
    stderr.truncate(0), stderr.seek(0)
    assert requestlog._handler is not None
    requestlog._handler.setFormatter(logging.Formatter("log: %(message)s"))
    requestlog.write(dict(LINE))
    assert stderr.getvalue().startswith('log: {"request_id":"req_1"')
    # A filter on the handler that drops the line: dropped.
    stderr.truncate(0), stderr.seek(0)
    requestlog._handler.addFilter(lambda record: False)
    requestlog.write(dict(LINE))
    assert stderr.getvalue() == ""


def test_a_failing_stream_is_reported_not_raised(
    stderr: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured(stderr)

    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("pipe closed")

    assert requestlog._handler is not None
    requestlog._handler.setStream(Broken())
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(requestlog._handler, "handleError", reported.append)
    requestlog.write(dict(LINE))  # no exception reaches the caller (the response's accounting)
    assert len(reported) == 1 and reported[0].getMessage() == json.dumps(
        {**LINE, "ts": 1234.568}, ensure_ascii=False, separators=(",", ":")
    )


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def test_the_lines_of_one_turn_of_the_loop_go_out_in_one_write(stderr: io.StringIO) -> None:
    configured(stderr)
    counting = CountingStream()
    assert requestlog._handler is not None
    requestlog._handler.setStream(counting)

    async def responses() -> tuple[str, str]:
        for n in range(3):
            requestlog.write({**LINE, "request_id": f"req_{n}"})
        during = counting.getvalue()
        await asyncio.sleep(0)  # the next turn
        return during, counting.getvalue()

    during, after = asyncio.run(responses())
    assert during == "" and counting.writes == 1
    assert [json.loads(x)["request_id"] for x in after.split("\n")[:-1]] == ["req_0", "req_1", "req_2"]
    assert after.endswith("}\n")


def test_configure_writes_what_is_waiting(stderr: io.StringIO) -> None:
    configured(stderr)

    async def then_reconfigure() -> None:
        requestlog.write(dict(LINE))
        requestlog.configure(False)  # e.g. a reload turning the log off, within the same turn

    asyncio.run(then_reconfigure())
    assert json.loads(stderr.getvalue())["request_id"] == "req_1"


def test_a_line_waiting_at_exit_is_written(tmp_path: Path) -> None:
    """The process ends within the turn that wrote the line (no later turn runs)."""
    script = (
        "import asyncio, os, sys\n"
        "from responses_gateway.telemetry import requestlog\n"
        "requestlog.configure(True)\n"
        "async def main():\n"
        "    requestlog.write({'request_id': 'req_exit'})\n"
        "    sys.stderr.flush()\n"
        "    sys.exit(0)\n"
        "loop = asyncio.new_event_loop()\n"
        "loop.run_until_complete(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(x)["request_id"] for x in done.stderr.splitlines()] == ["req_exit"]


def test_loops_on_several_threads_lose_no_line(stderr: io.StringIO) -> None:
    configured(stderr)

    async def responses(name: str) -> None:
        for n in range(300):
            requestlog.write({**LINE, "request_id": f"{name}_{n}"})
            if n % 3 == 0:
                await asyncio.sleep(0)

    threads = [threading.Thread(target=asyncio.run, args=(responses(f"t{i}"),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    requestlog.flush()  # a loop that ended with lines waiting leaves them to exit / configure
    ids = [json.loads(x)["request_id"] for x in stderr.getvalue().split("\n")[:-1]]
    assert sorted(ids) == sorted(f"t{i}_{n}" for i in range(4) for n in range(300))
