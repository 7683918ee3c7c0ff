"""The Python client's documented examples, run as written against a real gateway; and status names.

Every ```python block of clients/python/README.md, and the gRPC-client block of the top-level README.md, is
executed in a fresh namespace (so a missing import fails) with only its address, `localhost:50051`, replaced
by the gateway's. The gateway (a subprocess, OS-picked ports) serves the models the examples name, `gpt-4.1`
and `mock`, from `mock_response`; it has no master key, as `make run` has none by default (the examples'
`api_key="sk-gw"` is then sent and ignored).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import responses_gateway.client
from responses_gateway.client import (
    GatewayError,
    NotFoundError,
    ResponsesClient,
    status_code,
    status_name,
)
from responses_gateway.client._common import enum_json
from responses_gateway.v1 import items_pb2, request_pb2, response_pb2
from tests.support.process import GatewayProcess, run_gateway

ROOT = Path(__file__).resolve().parents[2]
CLIENT_README = ROOT / "clients" / "python" / "README.md"
TOP_README = ROOT / "README.md"
DOC_TARGET = "localhost:50051"
MOCK_TEXT = "Hello from the README test."
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks(readme: Path) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block."""
    text = readme.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _BLOCK.finditer(text)]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    config = tmp_path_factory.mktemp("readme-gateway") / "gateway.yaml"
    mock = f"litellm_params: {{model: openai/mock, mock_response: '{MOCK_TEXT}'}}"
    config.write_text(
        "model_list:\n"
        f"  - {{model_name: gpt-4.1, {mock}}}\n"
        f"  - {{model_name: mock, {mock}}}\n"
        f"gateway_settings: {{store: {{path: '{config.parent / 'db.sqlite'}'}}}}\n"
    )
    with run_gateway(config) as running:
        yield running


def run_block(readme: Path, line: int, code: str, target: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Exec one README block as written (address aside); return what it printed."""
    assert DOC_TARGET in code, f"{readme.name}:{line}: the example does not use {DOC_TARGET}"
    source = code.replace(DOC_TARGET, target)
    capsys.readouterr()
    exec(compile(source, f"{readme.name}:{line}", "exec"), {"__name__": "__readme__"})
    return capsys.readouterr().out


def test_python_client_readme_examples_run(
    gateway: GatewayProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The TLS examples read these files; the channels they open are lazy, so any bytes will do.
    for name in ("ca.pem", "client.key", "client.pem"):
        (tmp_path / name).write_bytes(b"placeholder\n")
    monkeypatch.chdir(tmp_path)

    outputs = [
        run_block(CLIENT_README, line, code, gateway.target, capsys)
        for line, code in python_blocks(CLIENT_README)
    ]
    # In README order: Connect, Create a response, Stream, Stream (asyncio), Errors.
    assert len(outputs) == 5, f"expected the 5 examples of {CLIENT_README.name}, found {len(outputs)}"
    connect, create, stream, asyncio_stream, errors = outputs

    assert connect == ""
    lines = create.splitlines()
    assert re.fullmatch(r"resp_\w+ completed", lines[0]), create  # the status by name, not `1`
    assert lines[1] == MOCK_TEXT, create
    assert lines[-1] == "['gpt-4.1', 'mock']", create

    assert MOCK_TEXT in stream and "output tokens" in stream, stream
    assert stream.splitlines()[-1] == "completed", stream

    assert asyncio_stream.startswith(MOCK_TEXT), asyncio_stream
    assert re.search(r"^resp_\w+$", asyncio_stream, re.M), asyncio_stream

    assert errors.splitlines() == ["NOT_FOUND MODEL_NOT_FOUND model"], errors


def test_top_level_readme_grpc_example_runs(
    gateway: GatewayProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = [(line, code) for line, code in python_blocks(TOP_README) if "responses_gateway.client" in code]
    assert len(blocks) == 1, "expected one Python-client example in README.md"
    out = run_block(TOP_README, *blocks[0], gateway.target, capsys)
    text, response_id = out.splitlines()
    assert text == MOCK_TEXT and re.fullmatch(r"resp_\w+", response_id), out


def test_package_docstring_example_runs(gateway: GatewayProcess, capsys: pytest.CaptureFixture[str]) -> None:
    doc = responses_gateway.client.__doc__ or ""
    # The indented example: from the first indented line up to the next unindented text.
    example = re.search(r"^( {4}.*\n(?:(?: {4}.*)?\n)*)", doc, re.M)
    assert example is not None, doc
    code = textwrap.dedent(example.group(1))
    assert "ResponsesClient(" in code, doc
    out = run_block(Path("responses_gateway/client/__init__.py"), 3, code, gateway.target, capsys)
    assert out == f"{MOCK_TEXT} completed\n", out


# ---------------------------------------------------------------------------------------- status names
def test_statuses_by_name(gateway: GatewayProcess) -> None:
    with ResponsesClient(gateway.target, timeout=30) as client:
        response = client.create(model="mock", input="Say hi")
        assert response.status == response_pb2.RESPONSE_STATUS_COMPLETED  # still the protobuf enum
        assert status_name(response) == "completed"
        assert status_name(response.status) == "completed"
        assert status_name(response.output[0].message) == "completed"  # an ItemStatus

        stream = client.stream(model="mock", input="Say hi")
        assert status_name(stream.final_response()) == "completed"

    assert status_name(response_pb2.RESPONSE_STATUS_IN_PROGRESS) == "in_progress"
    assert status_name(items_pb2.Message(status=items_pb2.ITEM_STATUS_INCOMPLETE)) == "incomplete"
    assert status_name(response_pb2.Response()) == ""  # unset
    assert status_name(999) == "999"  # a value from a newer gateway
    with pytest.raises(TypeError):
        status_name(request_pb2.Input(text="no status field"))
    # An `enum_json` spelling wins over the lower-cased name.
    include = request_pb2.Include.DESCRIPTOR
    assert enum_json(include, request_pb2.INCLUDE_WEB_SEARCH_CALL_RESULTS) == "web_search_call.results"


def test_errors_print_code_names(gateway: GatewayProcess) -> None:
    with ResponsesClient(gateway.target, timeout=30) as client, pytest.raises(NotFoundError) as err:
        client.create(model="no-such-model", input="Say hi")
    e = err.value
    assert e.code == grpc.StatusCode.NOT_FOUND and e.code_name == "NOT_FOUND"
    assert str(e).startswith("NOT_FOUND MODEL_NOT_FOUND: "), str(e)
    assert repr(e).startswith("NotFoundError(code=NOT_FOUND, reason='MODEL_NOT_FOUND', "), repr(e)

    with ResponsesClient("127.0.0.1:1", timeout=2) as unreachable, pytest.raises(GatewayError) as down:
        unreachable.list_models()
    assert down.value.reason is None and str(down.value).startswith("UNAVAILABLE: "), str(down.value)

    # A code given as a number (google.rpc.Status.code) is kept as the enum, so it prints by name.
    numeric = GatewayError("gone", code=5, reason="RESPONSE_NOT_FOUND")
    assert numeric.code is grpc.StatusCode.NOT_FOUND
    assert str(numeric) == "NOT_FOUND RESPONSE_NOT_FOUND: gone"
    assert str(GatewayError("no key", code=16, reason="UNAUTHENTICATED")) == "UNAUTHENTICATED: no key"
    assert status_code(99) is grpc.StatusCode.UNKNOWN
