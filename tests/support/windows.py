"""The rate limiters count per fixed window aligned on the clock (every window length in
use, a minute or 15, starts on a minute): a test whose requests straddled a window's end
would see its count restart halfway."""

from __future__ import annotations

import asyncio
import time


async def inside_one_window(longest_seconds: float) -> None:
    """Near a minute's end, wait for the next one, so the next `longest_seconds` of the
    test fall in one window."""
    left = 60 - time.time() % 60
    if left < longest_seconds:
        await asyncio.sleep(left + 0.1)
