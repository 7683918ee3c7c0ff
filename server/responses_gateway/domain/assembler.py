"""The stream assembler: numbers events and folds the final Response.

Every adapter's events pass through here, so no adapter can get numbering wrong: `sequence_number`
runs from 0 without gaps whatever the upstream sent, across every upstream turn of a response.
Indices are the stream's own — a native upstream's, or the stream builder's for a translated one,
which numbers items as they open — shifted past the items of earlier turns. Translated streams
(`translated=True`) have their lifecycle events filled from the gateway's Response shell. A response
of several turns keeps its first turn's id, lists every turn's items and adds up their usage.
"""

from __future__ import annotations

import time

from responses_gateway.contract import events as ev
from responses_gateway.contract.items import item_id
from responses_gateway.v1 import items_pb2, response_pb2

_ADDED = ev.ARM_OF_TAG[ev.ITEM_ADDED]
_DONE = ev.ARM_OF_TAG[ev.ITEM_DONE]
_ERROR = ev.ARM_OF_TAG[ev.ERROR]
_REFUSAL_DELTA = ev.ARM_OF_TAG["response.refusal.delta"]
_TEXT_DELTAS = frozenset({ev.ARM_OF_TAG["response.output_text.delta"], _REFUSAL_DELTA})
_ARGS_DELTA = ev.ARM_OF_TAG["response.function_call_arguments.delta"]
_UNFINISHED = (items_pb2.ITEM_STATUS_UNSPECIFIED, items_pb2.ITEM_STATUS_IN_PROGRESS)


def _arms_with(field: str) -> frozenset[str]:
    desc = ev.Event.DESCRIPTOR
    return frozenset(
        f.name
        for f in desc.oneofs_by_name["kind"].fields
        if f.message_type is not None and field in f.message_type.fields_by_name
    )


_ITEM_ARMS = _arms_with("item_id") & _arms_with("output_index")


class Assembler:
    def __init__(self, shell: response_pb2.Response, *, translated: bool) -> None:
        self.shell = shell
        self.translated = translated
        self.response: response_pb2.Response = shell
        self.items: list[items_pb2.Item] = []
        self.terminal_type: str | None = None
        self.saw_error: ev.Event | None = None
        self._seq = 0
        # Text and arguments streamed so far, so a broken-off response keeps what the client saw.
        self._deltas: dict[tuple[str, int], list[str]] = {}
        self._refusals: set[tuple[str, int]] = set()
        self._arguments: dict[str, list[str]] = {}
        # Several turns: the first turn's response (its id and created_at stay), the usage of the
        # turns before this one, and where this turn's native output indices start.
        self._first: response_pb2.Response | None = None
        self._usage: list[response_pb2.Usage] = []
        self._base = 0
        self._own_items = False
        self._ended_usage: response_pb2.Usage | None = None

    @property
    def later_turn(self) -> bool:
        return self._first is not None

    def end_turn(self, terminal: ev.Event) -> response_pb2.Response:
        """Fold in the terminal event of a turn that does not end the response: not numbered, not
        sent. Returns the response so far."""
        body = getattr(terminal, terminal.WhichOneof("kind") or "")
        merged = self._merged(body.response, terminal=True, totals=False)
        if self._first is None:
            self._first = response_pb2.Response(id=merged.id, created_at=merged.created_at)
        self._ended_usage = response_pb2.Usage()
        self._ended_usage.CopyFrom(merged.usage)
        self.response = merged
        return merged

    def begin_turn(self) -> None:
        """The next upstream turn starts: its native output indices come after the items so far, and
        the turn that ended counts in the usage of the response."""
        self._base = len(self.items)
        if self._ended_usage is not None:
            self._usage.append(self._ended_usage)
            self._ended_usage = None

    def own_item(self, item: items_pb2.Item) -> list[ev.Event]:
        """An item the gateway adds itself (between turns): its added / done events, numbered."""
        self._own_items = True
        n = len(self.items) - self._base  # the next turn's base is set after these: relative to this one
        return [self.accept(ev.item_added(item, n)), self.accept(ev.item_done(item, n))]

    def accept(self, event: ev.Event, arm: str | None = None) -> ev.Event:
        """Number `event`, fix it up in place, and fold it into the running state (`arm`: its union
        arm, when the caller has looked it up already)."""
        event.sequence_number = self._seq
        self._seq += 1
        if arm is None:
            arm = event.WhichOneof("kind")
        if arm is None or arm == "unknown":
            return event
        if arm in ev.LIFECYCLE_ARMS:
            self._lifecycle(event, arm)
        elif arm in (_ADDED, _DONE):
            self._item(event, arm)
        elif arm == _ERROR:
            self.saw_error = event
        elif self._base and arm in _ITEM_ARMS:
            getattr(event, arm).output_index += self._base
        if arm in _TEXT_DELTAS:
            body = getattr(event, arm)
            key = (body.item_id, body.content_index)
            self._deltas.setdefault(key, []).append(body.delta)
            if arm == _REFUSAL_DELTA:
                self._refusals.add(key)
        elif arm == _ARGS_DELTA:
            body = getattr(event, arm)
            self._arguments.setdefault(body.item_id, []).append(body.delta)
        return event

    def _lifecycle(self, event: ev.Event, arm: str) -> None:
        body = getattr(event, arm)
        merged = self._merged(body.response, terminal=arm in ev.TERMINAL_ARMS)
        if merged is not body.response:
            body.response.CopyFrom(merged)
        self.response = body.response
        if arm in ev.TERMINAL_ARMS:
            self.terminal_type = ev.TAG_OF_ARM[arm]
            if not self.response.completed_at and self.terminal_type == ev.COMPLETED:
                self.response.completed_at = int(time.time())

    def _merged(
        self, response: response_pb2.Response, *, terminal: bool, totals: bool = True
    ) -> response_pb2.Response:
        """A lifecycle event's response as the client sees it: on the gateway's shell (translated
        streams), one id across turns, every turn's items and usage in the terminal one."""
        merged = response
        if self.translated:
            merged = response_pb2.Response()
            merged.CopyFrom(self.shell)
            if response.tools:
                # A response made from one already merged (the gateway's own response.failed) lists
                # the shell's tools itself: MergeFrom would list them twice.
                del merged.tools[:]
            merged.MergeFrom(response)
        first = self._first
        if first is not None:
            merged.id, merged.created_at = first.id, first.created_at
        if terminal and self.items and (first is not None or self._own_items or not merged.output):
            del merged.output[:]
            merged.output.extend(self.items)
        if totals and terminal and self._usage and merged.HasField("usage"):
            u = merged.usage
            for earlier in self._usage:
                u.input_tokens += earlier.input_tokens
                u.output_tokens += earlier.output_tokens
                u.total_tokens += earlier.total_tokens
                u.input_tokens_details.cached_tokens += earlier.input_tokens_details.cached_tokens
                u.output_tokens_details.reasoning_tokens += earlier.output_tokens_details.reasoning_tokens
        return merged

    def _item(self, event: ev.Event, arm: str) -> None:
        body = getattr(event, arm)
        body.output_index += self._base
        idx = body.output_index
        if idx < len(self.items):
            self.items[idx] = body.item  # the done event, or an added one for the same place again
        else:
            self.items.append(body.item)

    def partial_output(self) -> list[items_pb2.Item]:
        """The output so far, items still in progress completed from their streamed deltas and marked
        `incomplete` (copies: the events already sent stay as they were)."""
        out = []
        for original in self.items:
            item = items_pb2.Item()
            item.CopyFrom(original)
            kind = item.WhichOneof("kind")
            arm = getattr(item, kind) if kind and kind != "unknown" else None
            if arm is not None and "status" in arm.DESCRIPTOR.fields_by_name and arm.status in _UNFINISHED:
                arm.status = items_pb2.ITEM_STATUS_INCOMPLETE
                iid = item_id(item)
                if kind == "message":
                    self._fill_message(item.message, iid)
                elif kind == "function_call" and iid in self._arguments:
                    item.function_call.arguments = "".join(self._arguments[iid])
            out.append(item)
        return out

    def _fill_message(self, msg: items_pb2.Message, iid: str) -> None:
        keys = sorted(k for k in self._deltas if k[0] == iid)
        parts = msg.content.parts.parts
        for _, index in keys:
            text = "".join(self._deltas[(iid, index)])
            while len(parts) <= index:
                parts.add()
            part = parts[index]
            if (iid, index) in self._refusals:
                part.refusal.refusal = text
            elif not part.output_text.text:
                part.output_text.text = text

    def broken_off(self, status: int) -> response_pb2.Response:
        """The response so far, with `status` and the partial output (for a stream that did not end)."""
        out = response_pb2.Response()
        out.CopyFrom(self.response)
        out.status = status  # type: ignore[assignment]
        if self.items:
            del out.output[:]
            out.output.extend(self.partial_output())
        return out

    def failure(self, code: str, message: str) -> ev.Event:
        """A well-formed `response.failed` for a stream that broke; numbered by `accept`, like the rest."""
        failed = self.broken_off(response_pb2.RESPONSE_STATUS_FAILED)
        failed.error.message = message
        failed.ClearField("completed_at")  # for completed responses only
        codes = response_pb2.ResponseErrorCode
        name = f"RESPONSE_ERROR_CODE_{code.upper()}"
        if name in codes.DESCRIPTOR.values_by_name:
            failed.error.code = codes.Value(name)
        else:
            # A gateway code OpenAI's enum lacks (store_unavailable): kept where the codec keeps an
            # unknown code, so REST still says `"code": "<code>"`.
            failed.error.extra_fields["code"].string_value = code
        return ev.lifecycle_event(ev.FAILED, failed)
