"""Validators for what the gateway emits: `Spec` against one spec file in ../shared/spec (OpenAI's by
default): any schema by name, and stream events against the schema of their own type (then, once per
type, the union); `BothSpecs` against OpenAI's spec and the Open Responses spec at once, whose schemas
have other names (`ResponseResource`, `ResponseCreatedStreamingEvent`, ...), mapped here."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.spec import SPEC_NAME, spec_path

OPEN_RESPONSES = "openresponses.openapi.json"


class Spec:
    def __init__(self, file: str = SPEC_NAME) -> None:
        contents = json.loads(spec_path(file).read_text())
        self.file = file
        self.uri = f"urn:spec:{file}"
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(self.uri, resource)
        self.validators: dict[str, Draft202012Validator] = {}
        schemas = contents["components"]["schemas"]
        self.schemas: dict[str, Any] = schemas
        # event type -> the schema of that one event (for readable errors; the union is checked too)
        self.event_schema: dict[str, str] = {}
        self.union_checked: set[str] = set()
        # OpenAI lists its events in one union schema; Open Responses only in the `text/event-stream`
        # content of POST /responses, each event a `*StreamingEvent` schema.
        self.union: str | None = "ResponseStreamEvent" if "ResponseStreamEvent" in schemas else None
        members = (
            [ref["$ref"].rsplit("/", 1)[-1] for ref in schemas[self.union]["anyOf"]]
            if self.union
            else [n for n in schemas if n.endswith("StreamingEvent")]
        )
        for name in members:
            for tag in schemas[name].get("properties", {}).get("type", {}).get("enum", []):
                self.event_schema[tag] = name

    def validator(self, name: str) -> Draft202012Validator:
        if name not in self.validators:
            schema = {"$ref": f"{self.uri}#/components/schemas/{name}"}
            self.validators[name] = Draft202012Validator(schema, registry=self.registry)
        return self.validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in self.validator(name).iter_errors(instance)
        ]

    def check(self, name: str, instance: Any) -> None:
        problems = self.errors(name, instance)
        what = f" ({instance.get('type')})" if isinstance(instance, dict) and "type" in instance else ""
        assert not problems, f"{self.file}: {name} does not validate{what}:\n" + "\n".join(problems[:10])

    def check_event(self, event: dict[str, Any]) -> None:
        name = self.event_schema.get(event.get("type", ""))
        assert name is not None, f"no event type {event.get('type')!r} in {self.file}"
        self.check(name, event)
        # Valid under one member is valid under the union; the (slow) union check runs once per type.
        if self.union is not None and name not in self.union_checked:
            self.check(self.union, event)
            self.union_checked.add(name)


# The events the two specs spell differently: OpenAI's tag -> Open Responses' tag for the same event
# (same fields). The gateway speaks OpenAI's spelling; the Open Responses schema is checked with the
# type renamed, so its fields are held to that spec too.
OPEN_RESPONSES_TAG = {
    "response.reasoning_text.delta": "response.reasoning.delta",
    "response.reasoning_text.done": "response.reasoning.done",
}


class BothSpecs:
    """Every object is checked against OpenAI's spec and the Open Responses spec."""

    RESPONSE: ClassVar[dict[str, str]] = {SPEC_NAME: "Response", OPEN_RESPONSES: "ResponseResource"}

    def __init__(self) -> None:
        self.openai = Spec(SPEC_NAME)
        self.open_responses = Spec(OPEN_RESPONSES)

    def check_response(self, response: Any) -> None:
        """A Response object (unary body, GET, the `response` of a lifecycle event)."""
        self.openai.check(self.RESPONSE[SPEC_NAME], response)
        self.open_responses.check(self.RESPONSE[OPEN_RESPONSES], response)

    def check_event(self, event: dict[str, Any]) -> None:
        """A stream event: each spec's schema for its type (an event type one spec lacks fails)."""
        self.openai.check_event(event)
        tag = event.get("type", "")
        renamed = OPEN_RESPONSES_TAG.get(tag)
        self.open_responses.check_event({**event, "type": renamed} if renamed else event)
        if "response" in event:  # the union checks above stop at the first error; say which field
            self.check_response(event["response"])
