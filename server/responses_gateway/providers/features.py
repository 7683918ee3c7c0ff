"""What to do with a request feature a provider cannot honour: a 400 naming it, or — with LiteLLM's
`drop_params: true` — drop it and say so (the transports surface `dropped` as a header / trailer)."""

from __future__ import annotations

from responses_gateway.errors import GatewayError, Reason
from responses_gateway.v1 import request_pb2


class Unsupported:
    def __init__(self, provider: str, *, drop: bool) -> None:
        self.provider = provider
        self.drop = drop
        self.dropped: list[str] = []

    def __call__(self, param: str, what: str | None = None) -> None:
        if self.drop:
            if param not in self.dropped:
                self.dropped.append(param)
            return
        raise GatewayError(
            Reason.UNSUPPORTED_PARAMETER,
            f"{self.provider} does not support {what or f'`{param}`'}. "
            "Remove it, or set `drop_params: true` on the deployment to drop it.",
            param=param,
        )

    def check_request(self, request: request_pb2.CreateResponseRequest, *, logprobs: bool = False) -> None:
        """What only OpenAI's Responses API has: stored prompts, conversations — and logprobs, unless the
        provider has them."""
        for param in ("prompt", "conversation"):
            if request.HasField(param):
                self(param)
        if not logprobs and request.HasField("top_logprobs"):
            self("top_logprobs")
