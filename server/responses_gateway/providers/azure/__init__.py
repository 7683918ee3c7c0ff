"""Azure OpenAI: the native Responses API behind Azure's URLs and api-key header."""
