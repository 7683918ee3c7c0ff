"""The conversation behind `previous_response_id`, read back from the store."""

from __future__ import annotations

from responses_gateway.store.base import ResponseStore, StoredResponse
from responses_gateway.v1 import items_pb2

# Guards against a cycle or an absurd chain in a corrupted store.
_MAX_CHAIN = 10_000


async def history(store: ResponseStore, previous: StoredResponse) -> list[items_pb2.Item]:
    """Every item of the conversation up to and including `previous`: each turn's input then output."""
    chain = [previous]
    while chain[-1].response.HasField("previous_response_id") and len(chain) < _MAX_CHAIN:
        earlier = await store.get(chain[-1].response.previous_response_id)
        if earlier is None:
            break
        chain.append(earlier)
    items: list[items_pb2.Item] = []
    for record in reversed(chain):
        items.extend(record.input_items)
        items.extend(record.response.output)
    return items
