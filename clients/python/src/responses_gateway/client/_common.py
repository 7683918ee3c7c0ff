"""What the sync and async clients share: channel credentials, request building, response helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias, TypeVar, cast

import grpc
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from responses_gateway.v1 import annotations_pb2, events_pb2, items_pb2, request_pb2, response_pb2
from responses_gateway.v1 import responses_service_pb2 as rs

M = TypeVar("M", bound=Message)
ChannelOptions = Sequence[tuple[str, Any]]
# "asc" / "desc" or a ListOrder value.
Order: TypeAlias = "Literal['asc', 'desc'] | rs.ListOrder.ValueType"
# A string, an Input, or items (messages or dicts of Item fields).
InputLike: TypeAlias = "str | request_pb2.Input | Iterable[items_pb2.Item | Mapping[str, Any]]"

# Raise the default 4 MiB receive cap: responses with images or long outputs exceed it.
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.max_receive_message_length", 64 * 1024 * 1024),)

_TERMINAL = ("response_completed", "response_failed", "response_incomplete")


def channel_credentials(
    *,
    secure: bool,
    root_certificates: bytes | None,
    private_key: bytes | None,
    certificate_chain: bytes | None,
    credentials: grpc.ChannelCredentials | None,
) -> grpc.ChannelCredentials | None:
    """The credentials for a TLS channel, or None for plaintext."""
    if credentials is not None:
        return credentials
    if secure or root_certificates or private_key or certificate_chain:
        return grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
    return None


def channel_options(options: ChannelOptions) -> list[tuple[str, Any]]:
    given = {name for name, _ in options}
    return [opt for opt in DEFAULT_OPTIONS if opt[0] not in given] + list(options)


def call_metadata(api_key: str | None, extra: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    metadata = tuple(extra)
    if api_key:
        metadata = (("authorization", f"Bearer {api_key}"), *metadata)
    return metadata


def to_input(value: InputLike) -> request_pb2.Input:
    """`input` as the API takes it: a string, an `Input`, or a list of `Item`s (or dicts of Item fields)."""
    if isinstance(value, request_pb2.Input):
        return value
    if isinstance(value, str):
        return request_pb2.Input(text=value)
    items = [i if isinstance(i, items_pb2.Item) else items_pb2.Item(**i) for i in value]
    return request_pb2.Input(items=items_pb2.ItemList(items=items))


def build(cls: type[M], request: M | None, fields: dict[str, Any]) -> M:
    """`request` as is, or a `cls` built from keyword fields (`input` may be given in its short forms)."""
    if request is not None:
        if fields:
            raise TypeError("pass either a request message or keyword fields, not both")
        if not isinstance(request, cls):
            raise TypeError(f"expected {cls.__name__}, got {type(request).__name__}")
        return request
    if "input" in fields and fields["input"] is not None:
        fields["input"] = to_input(fields["input"])
    return cls(**{k: v for k, v in fields.items() if v is not None})


def list_order(order: Order | None) -> rs.ListOrder.ValueType | None:
    if order is None or not isinstance(order, str):
        return order
    return rs.ListOrder.Value(f"LIST_ORDER_{order.upper()}")


def terminal_response(event: events_pb2.ResponseStreamEvent) -> response_pb2.Response | None:
    """The Response carried by a terminal event (completed / failed / incomplete), else None."""
    kind = event.WhichOneof("kind")
    if kind in _TERMINAL:
        response: response_pb2.Response = getattr(event, kind).response
        return response
    return None


def text_delta(event: events_pb2.ResponseStreamEvent) -> str | None:
    """The text of a `response.output_text.delta` event, else None."""
    if event.WhichOneof("kind") == "response_output_text_delta":
        return event.response_output_text_delta.delta
    return None


def output_text(response: response_pb2.Response) -> str:
    """The concatenated `output_text` parts of a response's output messages (as the OpenAI SDK's property)."""
    if response.HasField("output_text"):
        return response.output_text
    texts: list[str] = []
    for item in response.output:
        if item.WhichOneof("kind") != "message":
            continue
        content = item.message.content
        if content.WhichOneof("kind") == "text":
            texts.append(content.text)
            continue
        texts.extend(p.output_text.text for p in content.parts.parts if p.WhichOneof("kind") == "output_text")
    return "".join(texts)


def enum_json(enum: EnumDescriptor, number: int) -> str:
    """An enum value as the REST API spells it (docs/contract.md): its `enum_json`, else its name without the
    enum's prefix, lower-cased (``RESPONSE_STATUS_IN_PROGRESS`` -> ``in_progress``); "" for the unset value,
    the number as text for a value this client does not know (a newer gateway)."""
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    if number == 0:
        return ""
    spelling: str = value.GetOptions().Extensions[annotations_pb2.enum_json]
    if spelling:
        return spelling
    zero = enum.values_by_number.get(0)
    prefix = zero.name.removesuffix("UNSPECIFIED") if zero is not None else ""
    return value.name.removeprefix(prefix).lower()


def status_name(value: Message | int) -> str:
    """A status by name: ``"completed"``, ``"in_progress"``, ``"failed"``... (protobuf enums print as numbers).

    `value` is a message with a `status` enum field (a Response, or an item such as a Message) or a
    `ResponseStatus` value; the name is the REST API's spelling, as `openai` SDK users compare it.
    """
    if isinstance(value, Message):
        field = value.DESCRIPTOR.fields_by_name.get("status")
        if field is None or field.enum_type is None:
            raise TypeError(f"{type(value).__name__} has no status enum field")
        number: int = getattr(value, field.name)
        return enum_json(cast(EnumDescriptor, field.enum_type), number)
    return enum_json(response_pb2.ResponseStatus.DESCRIPTOR, int(value))
