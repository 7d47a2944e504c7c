"""Tests against the real lab Asterisk use the session ``lab`` fixture of tests/conftest.py."""
