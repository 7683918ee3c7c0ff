"""The Chat Completions API served through the Responses core (`POST /v1/chat/completions`)."""
