"""token_estimate: ceil(prompt characters / 4) + max completion tokens, over every prompt part."""

import pytest
from billing_core.quotas.token_estimate import estimate_tokens, prompt_characters, prompt_tokens


@pytest.mark.parametrize(("prompt", "expected"), [
    ("", 0), ("a", 1), ("abc", 1), ("abcd", 1), ("abcde", 2), ("x" * 4000, 1000), ("x" * 4001, 1001),
])
def test_prompt_tokens_round_up_per_four_characters(prompt, expected):
    assert prompt_tokens(prompt) == expected
    assert estimate_tokens(prompt, max_completion_tokens=0) == expected


def test_estimate_adds_the_maximum_completion():
    system, user = "s" * 400, "u" * 1000
    assert estimate_tokens(system, user, max_completion_tokens=1024) == 100 + 250 + 1024
    assert estimate_tokens(max_completion_tokens=512) == 512


def test_parts_are_summed_before_rounding():
    # 2 + 2 + 2 = 6 characters -> ceil(6 / 4) = 2 (rounding each part would give 3)
    assert estimate_tokens("ab", "cd", "ef", max_completion_tokens=0) == 2
    assert prompt_characters("ab", None, "cd") == 4
    assert estimate_tokens("ab", None, "cd", max_completion_tokens=10) == 11


def test_chat_messages_count_their_content():
    messages = [
        {"role": "system", "content": "You are terse."},  # 14
        {"role": "user", "content": [{"type": "text", "text": "Hi there"}, {"type": "image_url"}]},  # 8
        {"role": "assistant", "content": None},
    ]
    assert prompt_characters(*messages) == 22
    assert estimate_tokens(*messages, max_completion_tokens=100) == 6 + 100


def test_characters_are_code_points_not_bytes():
    assert prompt_characters("héllo wörld ✓") == 13
    assert estimate_tokens("日本語のテキスト", max_completion_tokens=0) == 2  # 8 characters


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100", None])
def test_max_completion_must_be_a_non_negative_integer(bad):
    with pytest.raises((TypeError, ValueError)):
        estimate_tokens("hello", max_completion_tokens=bad)


def test_max_completion_is_required_and_keyword_only():
    with pytest.raises(TypeError):
        estimate_tokens("hello")  # type: ignore[call-arg]


@pytest.mark.parametrize("bad", [42, b"bytes", {"role": "user", "content": 7}])
def test_unknown_prompt_parts_are_refused(bad):
    with pytest.raises(TypeError):
        estimate_tokens(bad, max_completion_tokens=1)
