"""Identifier rules: what an account, pool, reservation or order id may look like.

Every identifier that becomes part of a key matches one of these patterns (no '#', so no id can
forge another item's key), and is short enough for DynamoDB's key limits.
"""

from __future__ import annotations

import re

ID_MAX = 128
POOL_MAX = 64
# Anchored with ^ and $ so the same text is a valid (ECMA) JSON Schema pattern; Python matches
# it with fullmatch, so a trailing newline never passes.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
POOL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ID = re.compile(ID_PATTERN)

SYSTEM_PREFIX = "sys-"
SYSTEM_ACCOUNTS = ("sys-foundation", "sys-commons", "sys-community-pool")
COMMONS_ACCOUNT = "sys-commons"

# An account a caller may credit or spend from: an identifier that is not a system account
# (does not start with "sys-"), written without lookahead so every regex engine and every
# schema-driven generator reads it.
_C = "A-Za-z0-9_.:@-"
ACCOUNT_PATTERN = (rf"^(?:[A-Za-rt-z0-9][{_C}]{{0,127}}|s(?:[A-Za-xz0-9_.:@-][{_C}]{{0,126}})?"
                   rf"|sy(?:[A-Za-rt-z0-9_.:@-][{_C}]{{0,125}})?|sys(?:[A-Za-z0-9_.:@][{_C}]{{0,124}})?)$")


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def is_system_account(account_id: str) -> bool:
    return account_id in SYSTEM_ACCOUNTS or account_id.startswith(SYSTEM_PREFIX)
