"""Routing: which deployment serves a request, retries and fallbacks."""
