"""Input items as the contract holds them: a request's `input` as a list of items, their ids."""

from __future__ import annotations

from responses_gateway.contract.ids import new_id
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.v1 import items_pb2, request_pb2


def item_id(item: items_pb2.Item) -> str:
    """The `id` of whichever item the union holds ("" when it has none)."""
    kind = item.WhichOneof("kind")
    if kind is None:
        return ""
    if kind == "unknown":
        if item.unknown.HasField("struct_value"):
            v = item.unknown.struct_value.fields.get("id")
            return v.string_value if v is not None else ""
        return ""
    return str(getattr(getattr(item, kind), "id", "") or "")


def input_items(request: request_pb2.CreateResponseRequest) -> list[items_pb2.Item]:
    """`input` as items: a string is one user message with one `input_text` part, as OpenAI stores it."""
    kind = request.input.WhichOneof("kind")
    if kind is None:
        return []
    if kind == "text":
        item = items_pb2.Item()
        item.message.role = items_pb2.MESSAGE_ROLE_USER
        item.message.content.parts.parts.add().input_text.text = request.input.text
        return [item]
    if kind == "items":
        return list(request.input.items.items)
    raise GatewayError(
        Reason.INVALID_REQUEST,
        "Invalid type for 'input': expected a string or an array of items.",
        param="input",
    )


def with_ids(items: list[items_pb2.Item]) -> list[items_pb2.Item]:
    """Copies of `items` where every item that can carry an id has one (input_items pages by id)."""
    out: list[items_pb2.Item] = []
    for item in items:
        copy = items_pb2.Item()
        copy.CopyFrom(item)
        kind = copy.WhichOneof("kind")
        if kind and kind != "unknown":
            arm = getattr(copy, kind)
            if "id" in arm.DESCRIPTOR.fields_by_name and not arm.id:
                arm.id = new_id("msg" if kind == "message" else "item")
            if kind == "message" and not arm.HasField("status"):
                arm.status = items_pb2.ITEM_STATUS_COMPLETED
            if kind == "message" and arm.content.WhichOneof("kind") == "text":
                # OpenAI lists string content as one text part (input_items clients expect a list).
                text = arm.content.text
                part = arm.content.parts.parts.add()
                if arm.role == items_pb2.MESSAGE_ROLE_ASSISTANT:
                    part.output_text.text = text
                else:
                    part.input_text.text = text
        out.append(copy)
    return out
