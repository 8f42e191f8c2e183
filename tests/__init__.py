"""The test suite. Helpers in tests/support get pytest's assert rewriting like the tests
themselves, so a failing helper reports the values it compared."""

import pytest

pytest.register_assert_rewrite("tests.support")
