"""Rate limits over HTTP: an admin gets 30 requests a minute, then 429 RATE_LIMITED with
Retry-After, and the refused requests change nothing; other admins are not affected."""

from __future__ import annotations

import time

from tests.support.http import Caller, assert_error, assert_status, unique

ADMIN_PER_MINUTE = 30


def wait_for_room_in_this_minute(needed: float = 15.0) -> None:
    """The limit counts per minute: start the burst with enough of the minute left."""
    left = 60.0 - (time.time() % 60.0)
    if left < needed:
        time.sleep(left + 0.5)


def test_admin_rate_limit_is_30_per_minute_with_retry_after(api: Caller) -> None:
    admin = unique("ops-e2e-ratelimit")
    account = api.new_account()
    wait_for_room_in_this_minute()

    for i in range(ADMIN_PER_MINUTE):
        response = api.mint(account, 1, admin=admin, expect=None)
        assert response.status_code == 201, (i, response.status_code, response.text)

    refused = api.mint(account, 1, admin=admin, expect=None)
    assert_error(refused, 429, "RATE_LIMITED")
    retry_after = refused.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), refused.headers
    assert 1 <= int(retry_after) <= 60, retry_after

    # The refused mint minted nothing, and another admin is not held back.
    assert api.total_available(account) == ADMIN_PER_MINUTE
    assert_status(api.mint(account, 1, admin=unique("ops-e2e-other"), expect=None), 201)
    assert api.total_available(account) == ADMIN_PER_MINUTE + 1
