"""Tools the gateway runs itself, across the upstream turns of one response (a `TurnHook`, see
domain/run.py): MCP servers (`mcp_loop.py` the loop, `mcp_items.py` its pure translation,
`mcp_client.py` the SDK calls, `mcp_policy.py` which servers a request may reach)."""
