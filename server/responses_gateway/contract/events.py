"""Stream events by their OpenAI `type`, independent of the arm names the contract gives them."""

from __future__ import annotations

from responses_gateway.codec import union_tags
from responses_gateway.v1 import content_pb2, events_pb2, items_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent

TAG_OF_ARM: dict[str, str] = union_tags(Event.DESCRIPTOR)
ARM_OF_TAG: dict[str, str] = {tag: arm for arm, tag in TAG_OF_ARM.items()}

CREATED = "response.created"
IN_PROGRESS = "response.in_progress"
QUEUED = "response.queued"
COMPLETED = "response.completed"
INCOMPLETE = "response.incomplete"
FAILED = "response.failed"
ERROR = "error"
ITEM_ADDED = "response.output_item.added"
ITEM_DONE = "response.output_item.done"
PART_ADDED = "response.content_part.added"

TERMINAL = frozenset({COMPLETED, INCOMPLETE, FAILED})
# Events whose payload is a whole Response object.
LIFECYCLE = frozenset({CREATED, IN_PROGRESS, QUEUED, COMPLETED, INCOMPLETE, FAILED})
LIFECYCLE_ARMS = frozenset(ARM_OF_TAG[t] for t in LIFECYCLE)
TERMINAL_ARMS = frozenset(ARM_OF_TAG[t] for t in TERMINAL)


def event_type(event: Event) -> str:
    arm = event.WhichOneof("kind")
    if arm is None:
        return ""
    if arm == "unknown":
        v = event.unknown.struct_value.fields.get("type")
        return v.string_value if v is not None else ""
    return TAG_OF_ARM[arm]


def is_lifecycle(event: Event) -> bool:
    """The event carries a whole Response (created, in_progress, queued, or a terminal one)."""
    return event.WhichOneof("kind") in LIFECYCLE_ARMS


def is_terminal(event: Event) -> bool:
    return event.WhichOneof("kind") in TERMINAL_ARMS


def lifecycle_event(tag: str, response: response_pb2.Response) -> Event:
    event = Event()
    getattr(event, ARM_OF_TAG[tag]).response.CopyFrom(response)
    return event


def response_of(event: Event) -> response_pb2.Response | None:
    """The Response a lifecycle event carries."""
    arm = event.WhichOneof("kind")
    if arm in LIFECYCLE_ARMS:
        r: response_pb2.Response = getattr(event, arm).response
        return r
    return None


# --- typed constructors: one per event a gateway-built stream emits ------------------------------------
# (Built on the arm itself, so the field names are checked statically. Sequence numbers are the
# response run's to set; indices the builder of the stream's, who knows its items. A message's or a
# reasoning item's single content part is content_index 0, the proto's default.)


def item_added(item: items_pb2.Item, output_index: int = 0) -> Event:
    event = Event()
    event.response_output_item_added.item.CopyFrom(item)
    event.response_output_item_added.output_index = output_index
    return event


def item_done(item: items_pb2.Item, output_index: int = 0) -> Event:
    event = Event()
    event.response_output_item_done.item.CopyFrom(item)
    event.response_output_item_done.output_index = output_index
    return event


def part_added(item_id: str, part: content_pb2.ContentPart, output_index: int = 0) -> Event:
    event = Event()
    event.response_content_part_added.item_id = item_id
    event.response_content_part_added.part.CopyFrom(part)
    event.response_content_part_added.output_index = output_index
    return event


def part_done(item_id: str, part: content_pb2.ContentPart, output_index: int = 0) -> Event:
    event = Event()
    event.response_content_part_done.item_id = item_id
    event.response_content_part_done.part.CopyFrom(part)
    event.response_content_part_done.output_index = output_index
    return event


def text_delta(item_id: str, delta: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_output_text_delta.item_id = item_id
    event.response_output_text_delta.delta = delta
    event.response_output_text_delta.output_index = output_index
    return event


def text_done(item_id: str, text: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_output_text_done.item_id = item_id
    event.response_output_text_done.text = text
    event.response_output_text_done.output_index = output_index
    return event


def refusal_delta(item_id: str, delta: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_refusal_delta.item_id = item_id
    event.response_refusal_delta.delta = delta
    event.response_refusal_delta.output_index = output_index
    return event


def refusal_done(item_id: str, refusal: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_refusal_done.item_id = item_id
    event.response_refusal_done.refusal = refusal
    event.response_refusal_done.output_index = output_index
    return event


def arguments_delta(item_id: str, delta: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_function_call_arguments_delta.item_id = item_id
    event.response_function_call_arguments_delta.delta = delta
    event.response_function_call_arguments_delta.output_index = output_index
    return event


def arguments_done(item_id: str, name: str, arguments: str, output_index: int = 0) -> Event:
    event = Event()
    body = event.response_function_call_arguments_done
    body.item_id, body.name, body.arguments = item_id, name, arguments
    event.response_function_call_arguments_done.output_index = output_index
    return event


def summary_part_added(item_id: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_reasoning_summary_part_added.item_id = item_id
    event.response_reasoning_summary_part_added.part.summary_text.SetInParent()
    event.response_reasoning_summary_part_added.output_index = output_index
    return event


def summary_part_done(item_id: str, text: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_reasoning_summary_part_done.item_id = item_id
    event.response_reasoning_summary_part_done.part.summary_text.text = text
    event.response_reasoning_summary_part_done.output_index = output_index
    return event


def summary_text_delta(item_id: str, delta: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_reasoning_summary_text_delta.item_id = item_id
    event.response_reasoning_summary_text_delta.delta = delta
    event.response_reasoning_summary_text_delta.output_index = output_index
    return event


def summary_text_done(item_id: str, text: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_reasoning_summary_text_done.item_id = item_id
    event.response_reasoning_summary_text_done.text = text
    event.response_reasoning_summary_text_done.output_index = output_index
    return event


def reasoning_text_delta(item_id: str, delta: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_reasoning_text_delta.item_id = item_id
    event.response_reasoning_text_delta.delta = delta
    event.response_reasoning_text_delta.output_index = output_index
    return event


def reasoning_text_done(item_id: str, text: str, output_index: int = 0) -> Event:
    event = Event()
    event.response_reasoning_text_done.item_id = item_id
    event.response_reasoning_text_done.text = text
    event.response_reasoning_text_done.output_index = output_index
    return event
