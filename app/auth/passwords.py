"""Password hashing (argon2id through pwdlib), constant-cost for unknown users too.

Argon2 is deliberately slow (~100 ms of CPU); it runs in worker threads, a few at a
time, so a burst of logins never stalls the event loop that serves everyone else."""

from __future__ import annotations

from functools import lru_cache

import anyio
from pwdlib import PasswordHash

# argon2-cffi releases the GIL: a handful of threads use the cores without letting a
# login flood queue unbounded work.
_LIMITER = anyio.CapacityLimiter(4)


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher().hash, password, limiter=_LIMITER)


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one uses outdated parameters).

    Checks against a dummy hash when there is none, so an unknown or password-less user
    costs the same time as a wrong password."""
    return await anyio.to_thread.run_sync(_verify, password, password_hash, limiter=_LIMITER)


def _verify(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    if password_hash is None:
        _hasher().verify(password, _dummy_hash())
        return False, None
    return _hasher().verify_and_update(password, password_hash)


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash("not-a-real-password")
