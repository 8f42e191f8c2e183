"""Password hashing (argon2id through pwdlib), constant-cost for unknown users too."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one uses outdated parameters).

    Checks against a dummy hash when there is none, so an unknown or password-less user
    costs the same time as a wrong password."""
    if password_hash is None:
        _hasher().verify(password, _dummy_hash())
        return False, None
    return _hasher().verify_and_update(password, password_hash)


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash("not-a-real-password")
