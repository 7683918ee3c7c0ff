"""The REST shim (Starlette under uvicorn): OpenAI's JSON and SSE."""
