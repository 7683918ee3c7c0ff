"""Small asyncio helpers the gateway's background tasks share."""

from __future__ import annotations

import asyncio
import contextlib
import gc


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Stop a background loop and wait until it has stopped (its CancelledError absorbed)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# Allocations between young-generation collections (CPython's default: 700). A request allocates a few
# thousand short-lived objects (protobuf messages, dicts), so the default collects several times per
# request; most of them are freed by reference counting anyway.
_GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Once the server is up: the objects start-up made (modules, configs, compiled plans, price
    tables) live as long as the process, so move them out of the collector's way (gc.freeze), and
    collect the young generation less often. Old-generation collections then walk only what requests
    left behind instead of the whole heap."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, middle, old)
