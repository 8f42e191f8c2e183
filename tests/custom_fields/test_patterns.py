"""Stored patterns run in linear time: no value can make one stall the server."""

from __future__ import annotations

import pytest

from app.custom_fields.patterns import compile_pattern, full_match


def test_a_backtracking_bomb_answers_at_once() -> None:
    # A backtracking engine needs about 2^n steps here: with n = 100,000 it never ends.
    assert full_match("(a+)+$", "a" * 100_000 + "!") is False
    assert full_match("(a+)+$", "a" * 100_000) is True


@pytest.mark.parametrize("pattern", ["(?=a)a", "(?<!a)b", "(a)\\1", "([a-z"])
def test_patterns_re2_cannot_run_are_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(ValueError, match="RE2 syntax"):
        compile_pattern(pattern)


def test_matching_is_of_the_whole_value_and_unicode_aware() -> None:
    assert full_match("[A-Z]{3}-[0-9]+", "ABC-12")
    assert not full_match("[A-Z]{3}", "ABCD")
    assert full_match("é+", "éé")
    assert not full_match("[0-9]{3}", "\u0661\u0662\u0663")
