"""Estimate the tokens an LLM call will use before making it, the way the API documents it:

    estimate = ceil(prompt characters / 4) + max completion tokens

(the same rule as the service's quotas/token_estimate.py). Check or record the estimate against
the org's token quota, and record the actual usage afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4


def _text(part: object) -> str:
    if part is None:
        return ""
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        content: Any = part.get("content")
        if content is None or isinstance(content, str):
            return content or ""
        if isinstance(content, Iterable):
            return "".join(_text(piece.get("text") if isinstance(piece, Mapping) else piece) for piece in content)
    raise TypeError("a prompt part must be a string, None, or a chat message with string content")


def prompt_tokens(*parts: object) -> int:
    """ceil(characters / 4) over every part together."""
    return -(-sum(len(_text(part)) for part in parts) // CHARS_PER_TOKEN)


def estimate_tokens(*parts: object, max_completion_tokens: int) -> int:
    """`parts`: strings (None skipped) or chat messages ({"role", "content"})."""
    if isinstance(max_completion_tokens, bool) or not isinstance(max_completion_tokens, int):
        raise TypeError("max_completion_tokens must be an integer")
    if max_completion_tokens < 0:
        raise ValueError("max_completion_tokens must not be negative")
    return prompt_tokens(*parts) + max_completion_tokens
