"""Fixtures every test directory shares: the session's lab Asterisk (see lab_session.py)."""

from lab_session import lab, pytest_collection_finish

__all__ = ["lab", "pytest_collection_finish"]
