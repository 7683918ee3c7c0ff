"""Gemini adapter: Google AI generateContent and Vertex AI, with one translation."""
