"""OpenAI's native Responses API (and any server exposing `/v1/responses`): a pass-through adapter."""
