"""Anthropic Messages API adapter (native, not through the chat bridge)."""
