"""Estimate the tokens an LLM call will use, before making it, to check or record against an
org's token quota:

    estimate = ceil(prompt characters / 4) + max completion tokens

Prompt characters are summed over every part of the prompt (system, user, earlier turns), as
Python counts them (code points). Four characters per token is a deliberately simple, slightly
generous rule of thumb for English text; the completion is counted at its maximum, because that
is what the call may use. Record the actual usage afterwards when the provider reports it.

    tokens = estimate_tokens(system_prompt, user_prompt, max_completion_tokens=1024)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def _text(part: object) -> str:
    """A prompt part: a string, or a chat message {"role": ..., "content": str | [{"text": ...}]}."""
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


def prompt_characters(*parts: object) -> int:
    return sum(len(_text(part)) for part in parts)


def prompt_tokens(*parts: object) -> int:
    """ceil(characters / 4) over all parts together."""
    return -(-prompt_characters(*parts) // CHARS_PER_TOKEN)


def estimate_tokens(*parts: object, max_completion_tokens: int) -> int:
    """ceil(prompt characters / 4) + max_completion_tokens.

    `parts` are strings (None is skipped) or chat messages ({"role", "content"}); e.g.
    estimate_tokens(system, user, max_completion_tokens=512) or
    estimate_tokens(*messages, max_completion_tokens=512)."""
    return prompt_tokens(*parts) + _non_negative_int(max_completion_tokens, "max_completion_tokens")
