"""Shared test helpers. Their asserts are rewritten by pytest like the tests' own, so a
failing helper reports the values it compared."""

import pytest

pytest.register_assert_rewrite("tests.support")
