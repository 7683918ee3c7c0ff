"""One validator for what the gateway emits, against OpenAI's spec in ../shared/spec: any schema by
name, and stream events against the schema of their own type (then, once per type, the union)."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.spec import spec_path

SPEC_URI = "urn:openai-responses-spec"


class Spec:
    def __init__(self) -> None:
        contents = json.loads(spec_path().read_text())
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        self.validators: dict[str, Draft202012Validator] = {}
        # event type -> the schema of that one event (for readable errors; the union is checked too)
        schemas = contents["components"]["schemas"]
        self.event_schema: dict[str, str] = {}
        self.union_checked: set[str] = set()
        for ref in schemas["ResponseStreamEvent"]["anyOf"]:
            name = ref["$ref"].rsplit("/", 1)[-1]
            for tag in schemas[name].get("properties", {}).get("type", {}).get("enum", []):
                self.event_schema[tag] = name

    def validator(self, name: str) -> Draft202012Validator:
        if name not in self.validators:
            schema = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
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
        assert not problems, f"{name} does not validate{what}:\n" + "\n".join(problems[:10])

    def check_event(self, event: dict[str, Any]) -> None:
        name = self.event_schema.get(event.get("type", ""))
        assert name is not None, f"no event type {event.get('type')!r} in the spec"
        self.check(name, event)
        # Valid under one member is valid under the union; the (slow) union check runs once per type.
        if name not in self.union_checked:
            self.check("ResponseStreamEvent", event)
            self.union_checked.add(name)
