"""Placeholder replaced by the CLI implementation."""


def main() -> int:
    raise SystemExit("billing-admin is being written")
