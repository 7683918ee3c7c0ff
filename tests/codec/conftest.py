"""Shared fixtures: the OpenAI spec and validators for its schemas (the registry is built once a session)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.codec._schemas import spec

SPEC_URI = "urn:openai-responses-spec"

Validate = Callable[[str, Any], list[Any]]


@pytest.fixture(scope="session")
def openai_spec() -> dict[str, Any]:
    return spec()


@pytest.fixture(scope="session")
def spec_errors(openai_spec: dict[str, Any]) -> Validate:
    """`spec_errors(schema_name, instance)` → the jsonschema errors of `instance` against that component schema."""
    # The whole spec is one resource, so every `#/components/schemas/...` ref inside it resolves.
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(openai_spec))
    validators: dict[str, Draft202012Validator] = {}

    def errors(name: str, instance: Any) -> list[Any]:
        v = validators.get(name)
        if v is None:
            v = validators[name] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry
            )
        return list(v.iter_errors(instance))

    return errors
