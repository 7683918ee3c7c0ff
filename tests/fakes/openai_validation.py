"""The request checks the OpenAI fake applies as OpenAI does: which parameters each endpoint takes,
their types and ranges (``validate_create`` raises ``_Reject`` with OpenAI's error body)."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_transcripts import _Reject

CREATE_PARAMS = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
INPUT_TOKENS_PARAMS = frozenset(
    {
        "conversation",
        "input",
        "instructions",
        "model",
        "parallel_tool_calls",
        "personality",
        "previous_response_id",
        "reasoning",
        "text",
        "tool_choice",
        "tools",
        "truncation",
    }
)
COMPACT_PARAMS = frozenset(
    {
        "input",
        "instructions",
        "model",
        "previous_response_id",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "service_tier",
    }
)
_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    dict: "an object",
    list: "an array",
    type(None): "null",
}
_TYPED = [
    (
        (str,),
        "a string",
        ("model", "previous_response_id", "user", "safety_identifier", "prompt_cache_key", "truncation"),
    ),
    ((str, list), "one of a string or array of input items", ("input", "instructions")),
    ((bool,), "a boolean", ("stream", "store", "background", "parallel_tool_calls")),
    ((int, float), "a decimal", ("temperature", "top_p")),
    ((int,), "an integer", ("max_output_tokens", "max_tool_calls", "top_logprobs")),
    ((dict,), "an object", ("metadata", "reasoning", "text", "stream_options", "prompt")),
    ((list,), "an array", ("tools", "include")),
    ((str, dict), "one of a string or an object", ("tool_choice",)),
]


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def validate_create(body: Any, allowed: frozenset[str] = CREATE_PARAMS, model_required: bool = True) -> None:
    """The basic request checks OpenAI applies to POST /v1/responses (raises _Reject with its error body)."""
    if not isinstance(body, dict):
        got = _TYPE_NAMES.get(type(body), "an unknown type")
        raise _Reject(
            400, f"Invalid type for body: expected an object, but got {got} instead.", code="invalid_type"
        )
    for key in body:
        if key not in allowed:
            raise _Reject(400, f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    if model_required and body.get("model") is None:
        raise _Reject(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    for kinds, expected, names in _TYPED:
        for name in names:
            if body.get(name) is not None and not _is(body[name], kinds):
                got = _TYPE_NAMES.get(type(body[name]), "an unknown type")
                raise _Reject(
                    400,
                    f"Invalid type for '{name}': expected {expected}, but got {got} instead.",
                    name,
                    "invalid_type",
                )
    for name, hi in (("temperature", 2), ("top_p", 1)):
        value = body.get(name)
        if _is(value, (int, float)) and not 0 <= value <= hi:
            above = value > hi
            raise _Reject(
                400,
                f"Invalid '{name}': decimal {'above maximum' if above else 'below minimum'} value. "
                f"Expected a value {f'<= {hi}' if above else '>= 0'}, but got {float(value)} instead.",
                name,
                "decimal_above_max_value" if above else "decimal_below_min_value",
            )
    if _is(mot := body.get("max_output_tokens"), (int,)) and mot < 16:
        raise _Reject(
            400,
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got "
            f"{mot} instead.",
            "max_output_tokens",
            "integer_below_min_value",
        )
    if body.get("stream") is not True and body.get("stream_options") is not None:
        raise _Reject(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    for i, tool in enumerate(body.get("tools") or []):
        for field in ("type", "name"):
            needed = field == "type" or (isinstance(tool, dict) and tool.get("type") == "function")
            if needed and not (isinstance(tool, dict) and tool.get(field)):
                raise _Reject(
                    400,
                    f"Missing required parameter: 'tools[{i}].{field}'.",
                    f"tools[{i}].{field}",
                    "missing_required_parameter",
                )
