"""Helpers shared by the test tiers (no tests, no fixtures: the conftest.py files hold those)."""
