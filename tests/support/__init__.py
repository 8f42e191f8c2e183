"""Shared test helpers (their asserts are rewritten: see tests/__init__.py)."""
