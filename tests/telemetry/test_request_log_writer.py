"""The request log's direct write: the same bytes as the `logging` path, and only while the logger
is configured the way `configure` left it (level, handlers, filters and formatter honoured)."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

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
