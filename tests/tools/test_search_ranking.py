"""The gateway's tool search ranking (domain/tools/search_items.py, pure): BM25 over the deferred
tools' names, descriptions, parameters and namespaces, exact names, the cutoff and the limit."""

from __future__ import annotations

from typing import Any

from responses_gateway import codec
from responses_gateway.domain.tools import search_items as si
from responses_gateway.v1 import tools_pb2


def _tools(*raw: dict[str, Any]) -> list[tools_pb2.Tool]:
    return [codec.from_json(tools_pb2.Tool(), t) for t in raw]


def fn(name: str, description: str, **props: str) -> dict[str, Any]:
    params = {
        "type": "object",
        "properties": {p: {"type": "string", "description": d} for p, d in props.items()},
    }
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": params,
        "defer_loading": True,
    }


CATALOGUE = _tools(
    {
        "type": "namespace",
        "name": "billing",
        "description": "Invoices and payments.",
        "tools": [
            fn("get_invoice", "Fetch one invoice by number."),
            fn("refund_payment", "Refund a card payment.", payment_id="The payment to refund"),
            {"type": "function", "name": "status", "parameters": {"type": "object"}},
        ],
    },
    fn("get_forecast", "Weather forecast for a city.", city="City name"),
    fn("translate", "Translate a text into another language."),
)


def index() -> si.Index:
    return si.Index(si.split(CATALOGUE).deferred)


def names(found: list[si.Deferred]) -> list[str]:
    return [f"{d.key[0]}.{d.key[1]}" if d.key[0] else d.key[1] for d in found]


def test_split_holds_back_only_the_deferred_tools() -> None:
    split = si.split(CATALOGUE)
    assert [d.key for d in split.deferred] == [
        ("billing", "get_invoice"),
        ("billing", "refund_payment"),
        (None, "get_forecast"),
        (None, "translate"),
    ]
    (kept,) = split.upfront  # the namespace, with its one tool loaded up front
    assert [t.function.name for t in kept.namespace.tools] == ["status"]


def test_words_split_names_and_drop_plurals_and_filler() -> None:
    assert si.words("listOpenOrders of the CRM_v2") == ["list", "open", "order", "crm", "v", "2"]


def test_best_match_first_and_weak_matches_cut() -> None:
    assert names(index().search("refund the payment I made", set())) == ["billing.refund_payment"]
    assert names(index().search("what's the weather in Paris", set())) == ["get_forecast"]
    # Found through a parameter's description and the namespace's description.
    assert names(index().search("city", set())) == ["get_forecast"]
    assert names(index().search("invoices", set()))[0] == "billing.get_invoice"


def test_exact_names_and_exclusions() -> None:
    assert names(index().search("billing", set())) == ["billing.get_invoice", "billing.refund_payment"]
    assert names(index().search("billing.refund_payment", set())) == ["billing.refund_payment"]
    assert names(index().search("translate", {(None, "translate")})) == []
    assert index().search("submarine", set()) == []


def test_limit() -> None:
    many = si.Index(si.split(_tools(*(fn(f"report_{i}", "Make a sales report.") for i in range(9)))).deferred)
    assert len(many.search("sales report", set())) == si.LIMIT
