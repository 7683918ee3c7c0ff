"""Stream events by their OpenAI `type`, independent of the arm names the contract gives them."""

from __future__ import annotations

from responses_gateway.codec import union_tags
from responses_gateway.v1 import events_pb2, response_pb2

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
