"""The CLI's own failures and their exit codes (API failures are client.ApiError, exit 1)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_VIOLATIONS = 3  # `reconcile` found invariant violations or drift
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments, a bad input file or missing configuration: nothing was sent. Exit 2."""
