"""The Chat Completions bridge: Responses requests served by any OpenAI-compatible chat server."""
