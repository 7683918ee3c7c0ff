"""The gateway's own Response shell for a request: the id, timestamps and the echoed request fields.

OpenAI echoes most request parameters on the Response (with its defaults filled in); adapters whose
upstream is not the Responses API start from this shell, so their responses read the same.
"""

from __future__ import annotations

import time
from typing import Any

from responses_gateway.contract.ids import new_id
from responses_gateway.v1 import request_pb2, response_pb2, tools_pb2

# Not `conversation`: only native upstreams have conversations (others refuse or drop it), and the
# request's form (an id or an object) is not the Response's.
_ECHOED_MESSAGES = ("reasoning", "text", "tool_choice", "prompt", "prompt_cache_options")
_ECHOED_OPTIONAL = (
    "previous_response_id",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "max_output_tokens",
    "max_tool_calls",
    "top_logprobs",
    "truncation",
)
_PENALTIES = ("presence_penalty", "frequency_penalty")


def response_shell(request: request_pb2.CreateResponseRequest, model: str) -> response_pb2.Response:
    r = response_pb2.Response(
        id=new_id("resp"),
        object="response",
        created_at=int(time.time()),
        status=response_pb2.RESPONSE_STATUS_IN_PROGRESS,
        model=model,
        parallel_tool_calls=request.parallel_tool_calls if request.HasField("parallel_tool_calls") else True,
        temperature=request.temperature if request.HasField("temperature") else 1.0,
        top_p=request.top_p if request.HasField("top_p") else 1.0,
        background=request.background,
        store=request.store if request.HasField("store") else True,
    )
    if request.HasField("instructions"):
        r.instructions.text = request.instructions
    source: Any = request  # field names come from the tuples above, not literals mypy can check
    for name in _ECHOED_OPTIONAL:
        if source.HasField(name):
            setattr(r, name, getattr(request, name))
    for name in _ECHOED_MESSAGES:
        if source.HasField(name):
            getattr(r, name).CopyFrom(getattr(request, name))
    if not r.HasField("tool_choice"):
        r.tool_choice.mode = tools_pb2.TOOL_CHOICE_MODE_AUTO
    if not r.HasField("text"):
        r.text.format.text.SetInParent()
    r.tools.extend(request.tools)
    for tool in r.tools:
        # The Response lists function tools with `strict` filled in (OpenAI's default is true).
        if tool.WhichOneof("kind") == "function" and not tool.function.HasField("strict"):
            tool.function.strict = True
    r.metadata.update(request.metadata)
    if not r.HasField("truncation"):
        r.truncation = request_pb2.TRUNCATION_DISABLED
    # OpenAI's documented defaults, set here rather than left to the codec's JSON defaults, so a gRPC
    # client reads the same values as a REST one.
    if not r.HasField("service_tier"):
        r.service_tier = request_pb2.SERVICE_TIER_AUTO
    if not r.HasField("top_logprobs"):
        r.top_logprobs = 0
    for name in _PENALTIES:
        # Open Responses parameters the contract keeps in the request's extra fields.
        value = request.extra_fields.get(name)
        if value is not None and value.WhichOneof("kind") == "number_value":
            setattr(r, name, value.number_value)
    return r
