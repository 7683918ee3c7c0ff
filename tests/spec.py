"""Where the tests find OpenAI's spec: `../shared/spec/` beside the checkout (as CI lays it out), or
$RESPONSES_GATEWAY_SPEC. A missing spec fails the tests that need it; nothing is skipped."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPEC_NAME = "openai-responses.openapi.json"


def spec_path(name: str = SPEC_NAME) -> Path:
    candidates = (
        [Path(os.environ["RESPONSES_GATEWAY_SPEC"]).parent / name]
        if os.environ.get("RESPONSES_GATEWAY_SPEC")
        else []
    )
    candidates.append(REPO.parent / "shared" / "spec" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{name} not found in {', '.join(map(str, candidates))}: put ../shared/spec beside the checkout "
        "or set RESPONSES_GATEWAY_SPEC"
    )


@cache
def load_spec(name: str = SPEC_NAME) -> dict[str, Any]:
    return json.loads(spec_path(name).read_text())  # type: ignore[no-any-return]
