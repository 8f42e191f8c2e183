"""When a failed delivery is tried again: exponential backoff with jitter for at least
three days, never sooner than the receiver's `Retry-After` asks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# After the 1st, 2nd, … failed attempt; the last step repeats until the window ends.
BACKOFF_SECONDS = (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
RETRY_WINDOW = timedelta(days=3)
# A receiver asking for more than this waits this long: it cannot park a delivery for
# longer than one step of our own schedule.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class RetrySchedule:
    backoff: tuple[float, ...] = BACKOFF_SECONDS
    window: timedelta = RETRY_WINDOW
    # Each delay is stretched or shrunk by up to this share, so the retries of many
    # deliveries that failed together (an endpoint's outage) do not arrive together.
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th failed attempt."""
        base = self.backoff[min(failures, len(self.backoff)) - 1]
        seconds = base * (1 + self.jitter * (2 * self.rng.random() - 1))
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return seconds

    def next_attempt(
        self, *, failures: int, now: datetime, since: datetime, retry_after: float | None
    ) -> datetime | None:
        """When to try again, or None once the window that began at `since` is over."""
        if now - since >= self.window:
            return None
        return now + timedelta(seconds=self.delay(failures, retry_after))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    # ASCII digits only: `str.isdigit` takes `²` too, which float() refuses.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())
