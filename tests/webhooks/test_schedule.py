"""The retry schedule: backoff with jitter, at least three days, `Retry-After`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.webhooks.schedule import BACKOFF_SECONDS, RetrySchedule, retry_after_seconds

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def test_jitter_stays_within_a_fifth_of_each_step_and_varies() -> None:
    schedule = RetrySchedule(rng=random.Random(7))
    for failures, base in enumerate(BACKOFF_SECONDS, start=1):
        delays = {schedule.delay(failures) for _ in range(50)}
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(delays) > 1
    assert 0.8 * 86400 <= schedule.delay(40) <= 1.2 * 86400


def test_retries_last_at_least_three_days_then_stop() -> None:
    schedule = RetrySchedule(jitter=0)
    at, failures = NOW, 0
    while True:
        failures += 1
        following = schedule.next_attempt(failures=failures, now=at, since=NOW, retry_after=None)
        if following is None:
            break
        at = following
    assert at - NOW >= timedelta(days=3)
    assert failures == 12  # the last attempt about 94 hours after the first


def test_retry_after_is_a_floor_with_a_cap() -> None:
    schedule = RetrySchedule(jitter=0)
    assert schedule.delay(1, retry_after=120) == 120
    assert schedule.delay(3, retry_after=1) == 120  # our own step is longer
    assert schedule.delay(1, retry_after=10 * 86400) == 86400


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 7 ", 7.0),
        ("Tue, 04 Mar 2025 09:02:00 GMT", 120.0),
        ("Tue, 04 Mar 2025 08:00:00 GMT", 0.0),
        ("soon", None),
        ("\u00b2", None),  # a digit to str.isdigit, not to float()
        ("\u0663", None),  # an Arabic-Indic three: float() reads it, delay-seconds does not
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(header, NOW) == seconds
