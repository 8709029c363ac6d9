"""LLM providers: any OpenAI-compatible streaming endpoint, and Ollama's native `/api/chat`."""

from voxgate.providers.llm.openai_compat import OpenAICompatibleLLM

__all__ = ["OpenAICompatibleLLM"]
