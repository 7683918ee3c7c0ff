"""Azure AI Foundry: OpenAI-compatible chat (and the Responses API) with an api-key or Entra ID token."""
