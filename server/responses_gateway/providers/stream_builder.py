"""Builds well-formed Responses event sequences for adapters whose upstream speaks another protocol.

The adapter says what happened ("text started", "these argument bytes arrived", "finished with this
usage"); the builder emits the events OpenAI would, in OpenAI's order, and keeps each item's
accumulated state so the `*.done` events and the final items are complete. Indices and sequence
numbers are the stream assembler's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from responses_gateway.contract import events as ev
from responses_gateway.contract.ids import new_id
from responses_gateway.providers.grammar import GrammarMismatch, check
from responses_gateway.providers.tool_mapping import CUSTOM_ARGUMENT, OfferedTool, ToolMap
from responses_gateway.v1 import content_pb2, events_pb2, items_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent
_IN_PROGRESS = items_pb2.ITEM_STATUS_IN_PROGRESS
_COMPLETED = items_pb2.ITEM_STATUS_COMPLETED


@dataclass
class _Open:
    item: items_pb2.Item
    kind: str  # "text", "refusal", "function_call", "custom_tool_call", "reasoning"
    index: int  # its output_index: items are numbered as they open
    text: list[str] = field(default_factory=list)  # message text, call arguments, reasoning summary
    summary_open: bool = False
    content: list[str] | None = None  # raw reasoning text (reasoning_text content part), once started
    annotations: list[content_pb2.Annotation] = field(default_factory=list)  # on the message's text
    tool: OfferedTool | None = None  # the custom tool a custom_tool_call calls


class StreamBuilder:
    def __init__(self, tools: ToolMap | None = None) -> None:
        self._open: dict[str, _Open] = {}
        self._done: dict[int, items_pb2.Item] = {}
        self._opened = 0
        self._tools = tools  # the request's flat name map (calls come back under the flat names)
        self._calls = 0
        # Why the response fails although the upstream finished (a custom tool's input that does not
        # match its grammar): `finish` then ends it `failed` with this message.
        self.failure: str | None = None

    @property
    def items(self) -> list[items_pb2.Item]:
        """The items closed so far, in output order (the order they opened, whenever they closed)."""
        return [self._done[i] for i in sorted(self._done)]

    def _add(self, item_id: str, item: items_pb2.Item, kind: str) -> int:
        index, self._opened = self._opened, self._opened + 1
        self._open[item_id] = _Open(item, kind, index)
        return index

    # --- response lifecycle ----------------------------------------------------------------------

    def start(self) -> Iterator[Event]:
        for tag in (ev.CREATED, ev.IN_PROGRESS):
            r = response_pb2.Response(status=response_pb2.RESPONSE_STATUS_IN_PROGRESS)
            yield ev.lifecycle_event(tag, r)

    def finish(
        self,
        usage: response_pb2.Usage | None = None,
        *,
        incomplete_reason: int | None = None,
    ) -> Iterator[Event]:
        """Close whatever is still open, then `response.completed` (or `response.incomplete`)."""
        for item_id in list(self._open):
            yield from self.close(item_id)
        r = response_pb2.Response()
        if self.failure is not None:
            r.status = response_pb2.RESPONSE_STATUS_FAILED
            r.error.code = response_pb2.RESPONSE_ERROR_CODE_SERVER_ERROR
            r.error.message = self.failure
        elif incomplete_reason is not None:
            r.status = response_pb2.RESPONSE_STATUS_INCOMPLETE
            r.incomplete_details.reason = incomplete_reason  # type: ignore[assignment]
        else:
            r.status = response_pb2.RESPONSE_STATUS_COMPLETED
        r.output.extend(self.items)
        if usage is not None:
            r.usage.CopyFrom(usage)
            # Both details objects are required by OpenAI's schema (clients validate them).
            r.usage.input_tokens_details.SetInParent()
            r.usage.output_tokens_details.SetInParent()
        tag = ev.COMPLETED
        if self.failure is not None:
            tag = ev.FAILED
        elif incomplete_reason is not None:
            tag = ev.INCOMPLETE
        yield ev.lifecycle_event(tag, r)

    # --- messages ------------------------------------------------------------------------------------

    def open_text(self, *, refusal: bool = False) -> tuple[str, list[Event]]:
        item = items_pb2.Item()
        msg = item.message
        msg.id = new_id("msg")
        msg.role = items_pb2.MESSAGE_ROLE_ASSISTANT
        msg.status = _IN_PROGRESS
        msg.content.parts.SetInParent()
        empty = content_pb2.ContentPart()
        if refusal:
            empty.refusal.SetInParent()
        else:
            empty.output_text.SetInParent()
        n = self._add(msg.id, item, "refusal" if refusal else "text")
        return msg.id, [ev.item_added(item, n), ev.part_added(msg.id, empty, n)]

    def text_delta(self, item_id: str, delta: str) -> Event:
        state = self._open[item_id]
        state.text.append(delta)
        if state.kind == "refusal":
            return ev.refusal_delta(item_id, delta, state.index)
        return ev.text_delta(item_id, delta, state.index)

    # --- function calls ------------------------------------------------------------------------------

    def open_function_call(
        self, call_id: str, name: str, namespace: str | None = None
    ) -> tuple[str, list[Event]]:
        item = items_pb2.Item()
        fc = item.function_call
        fc.id = new_id("fc")
        fc.call_id = call_id
        if namespace:
            fc.namespace = namespace
        fc.name = name
        fc.status = _IN_PROGRESS
        return fc.id, [ev.item_added(item, self._add(fc.id, item, "function_call"))]

    def arguments_delta(self, item_id: str, delta: str) -> Event:
        state = self._open[item_id]
        state.text.append(delta)
        return ev.arguments_delta(item_id, delta, state.index)

    # --- tool calls under the request's flat names -------------------------------------------------

    def open_call(self, call_id: str, name: str) -> tuple[str | None, list[Event]]:
        """A tool call the model began, under the name the provider was offered: a function_call with
        its namespace and own name restored, or a custom_tool_call. (None, []) once the turn has all
        the calls it may keep (parallel_tool_calls false, max_tool_calls): the caller then ignores
        that call's deltas."""
        tools = self._tools
        if tools is not None and tools.max_calls is not None and self._calls >= tools.max_calls:
            return None, []
        self._calls += 1
        target = tools.lookup(name) if tools is not None else None
        if target is None or not target.custom:
            if target is None:
                return self.open_function_call(call_id, name)
            return self.open_function_call(call_id, target.name, target.namespace)
        item = items_pb2.Item()
        ctc = item.custom_tool_call
        ctc.id = new_id("ctc")
        ctc.call_id = call_id
        if target.namespace:
            ctc.namespace = target.namespace
        ctc.name = target.name
        n = self._add(ctc.id, item, "custom_tool_call")
        self._open[ctc.id].tool = target
        return ctc.id, [ev.item_added(item, n)]

    def call_delta(self, item_id: str, delta: str) -> list[Event]:
        """Argument bytes of a call `open_call` began. A custom call's arguments are the JSON object
        `{"input": ...}`: they are kept until the call closes, when the input is whole (and checked)."""
        state = self._open[item_id]
        if state.kind == "custom_tool_call":
            state.text.append(delta)
            return []
        return [self.arguments_delta(item_id, delta)]

    # --- reasoning -----------------------------------------------------------------------------------

    def open_reasoning(self) -> tuple[str, list[Event]]:
        item = items_pb2.Item()
        r = item.reasoning
        r.id = new_id("rs")
        return r.id, [ev.item_added(item, self._add(r.id, item, "reasoning"))]

    def summary_delta(self, item_id: str, delta: str) -> list[Event]:
        state = self._open[item_id]
        out: list[Event] = []
        if not state.summary_open:
            state.summary_open = True
            out.append(ev.summary_part_added(item_id, state.index))
        state.text.append(delta)
        out.append(ev.summary_text_delta(item_id, delta, state.index))
        return out

    def reasoning_text_delta(self, item_id: str, delta: str) -> list[Event]:
        """Raw chain of thought (open-weight models' `reasoning_content`), as a `reasoning_text` part."""
        state = self._open[item_id]
        out: list[Event] = []
        if state.content is None:
            state.content = []
            empty = content_pb2.ContentPart()
            empty.reasoning_text.SetInParent()
            out.append(ev.part_added(item_id, empty, state.index))
        state.content.append(delta)
        out.append(ev.reasoning_text_delta(item_id, delta, state.index))
        return out

    def set_encrypted_content(self, item_id: str, value: str) -> None:
        self._open[item_id].item.reasoning.encrypted_content = value

    # --- annotations and whole items (hosted tools mapped by providers/<name>/hosted.py) ---------------

    def add_annotation(self, item_id: str, annotation: content_pb2.Annotation) -> Event:
        """An annotation on an open message's text (a web citation): the event now, the part at close."""
        state = self._open[item_id]
        state.annotations.append(annotation)
        event = Event()
        added = event.response_output_text_annotation_added
        added.item_id, added.output_index = item_id, state.index
        added.annotation_index = len(state.annotations) - 1
        added.annotation.CopyFrom(annotation)
        return event

    def open_item(self, item_id: str, item: items_pb2.Item) -> tuple[int, Event]:
        """An item the adapter fills in itself (a hosted tool call): its output_index and its added
        event; `item_of` reaches it until `close` sends it done as it then is."""
        n = self._add(item_id, item, "item")
        return n, ev.item_added(item, n)

    def item_of(self, item_id: str) -> items_pb2.Item:
        return self._open[item_id].item

    def index_of(self, item_id: str) -> int:
        return self._open[item_id].index

    def text_of(self, item_id: str) -> str:
        """The text an open message has so far."""
        return "".join(self._open[item_id].text)

    # --- closing -------------------------------------------------------------------------------------

    def close(self, item_id: str) -> Iterator[Event]:
        state = self._open.pop(item_id)
        text, item, n = "".join(state.text), state.item, state.index
        if state.kind in ("text", "refusal"):
            yield from self._close_message(item_id, item, text, state.kind == "refusal", n, state.annotations)
        elif state.kind == "item":
            pass  # filled in by the adapter; only its done event remains
        elif state.kind == "function_call":
            text = text or "{}"  # a call without parameters still has a JSON object of arguments
            item.function_call.arguments = text
            item.function_call.status = _COMPLETED
            yield ev.arguments_done(item_id, item.function_call.name, text, n)
        elif state.kind == "custom_tool_call":
            yield from self._close_custom(item_id, item, text, state.tool, n)
        else:
            if state.content is not None:
                yield from self._close_reasoning_text(item_id, item, "".join(state.content), n)
            if state.summary_open:
                item.reasoning.summary.add().summary_text.text = text
                yield ev.summary_text_done(item_id, text, n)
                yield ev.summary_part_done(item_id, text, n)
        done = ev.item_done(item, n)
        self._done[n] = done.response_output_item_done.item
        yield done

    def _close_custom(
        self, item_id: str, item: items_pb2.Item, arguments: str, tool: OfferedTool | None, n: int
    ) -> Iterator[Event]:
        text = custom_input(arguments)
        ctc = item.custom_tool_call
        ctc.input = text
        if tool is not None and tool.grammar is not None:
            try:
                check(tool.grammar, text)
            except GrammarMismatch as e:
                # Never passed on as if valid: the call is returned (the client sees what the model
                # wrote) marked incomplete, and the response ends `failed` saying why.
                ctc.status = items_pb2.ITEM_STATUS_INCOMPLETE
                if self.failure is None:
                    self.failure = (
                        f"The model's input for custom tool `{ctc.name}` does not match the tool's "
                        f"{tool.grammar.syntax} grammar ({e}); the call was not passed on as valid."
                    )
        if text:
            delta = Event()
            body = delta.response_custom_tool_call_input_delta
            body.item_id, body.delta, body.output_index = item_id, text, n
            yield delta
        done = Event()
        end = done.response_custom_tool_call_input_done
        end.item_id, end.input, end.output_index = item_id, text, n
        yield done

    def _close_reasoning_text(self, item_id: str, item: items_pb2.Item, text: str, n: int) -> Iterator[Event]:
        part = content_pb2.ContentPart()
        part.reasoning_text.text = text
        item.reasoning.content.append(part)
        yield ev.reasoning_text_done(item_id, text, n)
        yield ev.part_done(item_id, part, n)

    def is_open(self, item_id: str | None) -> bool:
        return item_id is not None and item_id in self._open

    def _close_message(
        self,
        item_id: str,
        item: items_pb2.Item,
        text: str,
        refusal: bool,
        n: int,
        annotations: list[content_pb2.Annotation] | None = None,
    ) -> Iterator[Event]:
        part = content_pb2.ContentPart()
        if refusal:
            part.refusal.refusal = text
            yield ev.refusal_done(item_id, text, n)
        else:
            part.output_text.text = text
            part.output_text.annotations.extend(annotations or [])
            yield ev.text_done(item_id, text, n)
        yield ev.part_done(item_id, part, n)
        item.message.content.parts.parts.append(part)
        item.message.status = _COMPLETED


def custom_input(arguments: str) -> str:
    """A custom tool's input from the arguments of the function it was offered as: the `input`
    string, or — from a model that wrote something else — the arguments' one string value, else the
    arguments as they are."""
    try:
        parsed = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict):
        value = parsed.get(CUSTOM_ARGUMENT)
        if isinstance(value, str):
            return value
        strings = [v for v in parsed.values() if isinstance(v, str)]
        if len(parsed) == 1 and strings:
            return strings[0]
        return "" if not parsed else arguments
    return parsed if isinstance(parsed, str) else arguments
