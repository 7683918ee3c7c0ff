"""Provider adapters: each turns a Responses request into a stream of typed Responses events."""
