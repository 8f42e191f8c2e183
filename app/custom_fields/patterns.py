"""Patterns that admins store (a custom field's `regex`), run by RE2: matching takes time
linear in the value whatever the pattern, so no stored pattern can stall the server on a
value any ticket creator sends. RE2's syntax is Python's without backreferences and
lookaround (https://github.com/google/re2/wiki/Syntax)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
# A refused pattern is the caller's 422, not a line on the server's stderr.
_OPTIONS.log_errors = False


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern, or ValueError saying why RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "refused"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ValueError(f"not a valid regular expression (RE2 syntax): {reason}") from None


def full_match(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).fullmatch(text) is not None
